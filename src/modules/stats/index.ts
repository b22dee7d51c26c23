import type {Feature} from "../../common/feature.js";
// Providers nothing injects by type must still be loaded (components scan is disabled): the BullMQ
// job handlers and the nightly schedule.
import "./daily-stats-recompute.jobs.js";
import {AGGREGATION_QUEUE} from "./daily-stats-recompute.queue.js";
import {DailyStatsRecomputeController} from "./daily-stats-recompute.controller.js";
import {DailyStats} from "./daily-stats.entity.js";
import {StatsController} from "./stats.controller.js";

/**
 * DailyStats (analytics database): refreshed after every write of readings, recomputed nightly
 * and on an admin's request; the daily, weekly (cached) and hourly statistics routes.
 *
 * One noun per idea: `daily-stats` are the stored rows and what keeps them (refresh after a write,
 * recompute from the raw readings, verify); `day-totals` are totals of raw readings per device and
 * local day (or hour) — what a write adds, what a recompute computes; `stats` is the feature and
 * its read routes. "Aggregation" survives only in the public names a rename would break: the
 * `/admin/aggregations` route, its OpenAPI models and the BullMQ queue and job names.
 */
export const statsFeature: Feature = {
  name: "stats",
  controllers: [StatsController, DailyStatsRecomputeController],
  analyticsEntities: [DailyStats],
  queues: [AGGREGATION_QUEUE]
};
