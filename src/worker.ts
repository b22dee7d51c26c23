import {logger} from "@tsed/di";
import {PlatformExpress} from "@tsed/platform-express";
import {buildConfiguration} from "../tsed.config.js";
import {env} from "./config/env.js";
import {ensureDatabases} from "./platform/db/ensure-databases.js";
import {Server} from "./server.js";

/**
 * `npm run worker`: a BullMQ worker process without HTTP. Same configuration, providers and
 * migrations as the API (so jobs see the same schema), no routes, no listening socket, and BullMQ
 * workers always on (RUN_WORKERS only concerns the API process). SIGTERM lets the running job
 * finish (BullMQ's worker.close()) before exiting.
 */
try {
  const settings = {...env(), runWorkers: true};
  await ensureDatabases([settings.databaseUrl, settings.analyticsDatabaseUrl]);
  const platform = await PlatformExpress.bootstrap(Server, {
    ...buildConfiguration(settings),
    httpPort: false,
    httpsPort: false,
    mount: {},
    swagger: []
  });
  await platform.listen(false);
  logger().info({event: "WORKER_READY", pid: process.pid, queuePrefix: settings.queuePrefix});

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
