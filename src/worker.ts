import {logger} from "@tsed/di";
import {startHeadless} from "./bootstrap.js";
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

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger().info({event: "WORKER_STOPPING", signal});
    await platform.stop();
    await logger().shutdown?.();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
} catch (error) {
  console.error("smart-thermo worker failed to start:", error);
  process.exit(1);
}
