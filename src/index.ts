import {startServer} from "./bootstrap.js";

try {
  await startServer();
} catch (error) {
  console.error("smart-thermo failed to start:", error);
  process.exit(1);
}
