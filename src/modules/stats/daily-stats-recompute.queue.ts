import {inject} from "@tsed/common";
import {AppConfig} from "../../config/app-config.js";
import {jobSchedule} from "../../platform/queue/job-scheduler.js";

/** The DailyStats aggregation queue: producers, workers and the scheduler agree on these names. */
export const AGGREGATION_QUEUE = "aggregation";

/** Jobs of the aggregation queue. */
export const AGGREGATION_JOBS = {
  /** Scheduled nightly: enqueues one `tenant` job per registered tenant. */
  nightlyFanOut: "nightly-fan-out",
  /** Recomputes one local day of one tenant's DailyStats from its raw readings. */
  tenant: "aggregate-tenant",
  /** Recomputes every local day of one tenant (its timezone changed). */
  tenantAllDays: "recompute-tenant",
  /** Scheduled: recomputes the days a failed merge left behind, whatever the day. */
  repairDirtyDays: "repair-dirty-days"
} as const;

/** The job scheduler (kept in Redis across deploys) that fires the nightly fan-out. */
export const NIGHTLY_SCHEDULER_ID = "nightly-aggregation";

/** The job scheduler of the repair of days failed merges left behind: every five minutes. */
export const REPAIR_SCHEDULER_ID = "daily-stats-repair";

/**
 * Every night (`NIGHTLY_CRON`, UTC) one fan-out job; each tenant's job then picks its own local
 * yesterday.
 */
jobSchedule(NIGHTLY_SCHEDULER_ID, () => ({
  queue: AGGREGATION_QUEUE,
  pattern: inject(AppConfig).nightlyCron,
  job: {name: AGGREGATION_JOBS.nightlyFanOut, data: {}, opts: {removeOnComplete: {age: 7 * 24 * 3600}, removeOnFail: {age: 30 * 24 * 3600}}}
}));

jobSchedule(REPAIR_SCHEDULER_ID, () => ({
  queue: AGGREGATION_QUEUE,
  pattern: "*/5 * * * *",
  job: {name: AGGREGATION_JOBS.repairDirtyDays, data: {}, opts: {removeOnComplete: {age: 24 * 3600}, removeOnFail: {age: 7 * 24 * 3600}}}
}));
