import {logger} from "@tsed/common";
import {startHeadless, stopOnSignal} from "./bootstrap.js";
import {loadConfig} from "./config/app-config.js";

/**
 * `npm run worker`: a BullMQ worker process without HTTP. Same configuration, providers and
 * migrations as the API (so jobs see the same schema), and BullMQ workers always on (RUN_WORKERS
 * only concerns the API process). SIGTERM lets the running job finish (BullMQ's worker.close())
 * before exiting.
 */
try {
  const config = {...loadConfig(), runWorkers: true};
  const platform = await startHeadless(config);
  logger().info({event: "WORKER_READY", pid: process.pid, queuePrefix: config.queuePrefix});

  stopOnSignal(platform, "WORKER_STOPPING");
} catch (error) {
  console.error("smart-thermo worker failed to start:", error);
  process.exit(1);
}
