import type {Feature} from "../../common/feature.js";
// Providers nothing injects by type must still be loaded (components scan is disabled): the BullMQ
// job handlers and the nightly schedule.
import "./aggregation.jobs.js";
import {AGGREGATION_QUEUE} from "./aggregation.queue.js";
import {AggregationController} from "./aggregation.controller.js";
import {DailyStats} from "./daily-stats.entity.js";
import {StatsController} from "./stats.controller.js";

/**
 * DailyStats (analytics database): refreshed after every write of readings, recomputed nightly
 * and on an admin's request; the daily, weekly (cached) and hourly statistics routes.
 */
export const statsFeature: Feature = {
  name: "stats",
  controllers: [StatsController, AggregationController],
  analyticsEntities: [DailyStats],
  queues: [AGGREGATION_QUEUE]
};
