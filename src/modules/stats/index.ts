// Providers nothing injects by type must still be loaded (components scan is disabled): the
// after-commit hook, the BullMQ job handlers and the nightly scheduler.
import "./daily-stats.hook.js";
import "./aggregation.jobs.js";
import "../../platform/queue/nightly-scheduler.js";
import {ReadingHistoryController} from "../readings/reading-history.controller.js";
import {StatsController} from "./stats.controller.js";

/** Controllers of the stats feature (history queries, daily/weekly/hourly stats), mounted under /api/v1. */
export const statsControllers: unknown[] = [ReadingHistoryController, StatsController];
