import {inject} from "@tsed/common";
import {AppConfig} from "../../config/app-config.js";
import {jobSchedule} from "../../platform/queue/job-scheduler.js";

/** The readings' maintenance queue: producers, workers and the scheduler agree on these names. */
export const READINGS_MAINTENANCE_QUEUE = "readings-maintenance";

export const READINGS_MAINTENANCE_JOBS = {
  /** Scheduled nightly: every tenant's partitions ahead, and its raw retention. */
  partitions: "partitions"
} as const;

/** The job scheduler (kept in Redis across deploys) that fires the partition maintenance. */
export const PARTITIONS_SCHEDULER_ID = "readings-partitions";

/**
 * Every night (`READINGS_MAINTENANCE_CRON`, UTC) one job for all tenants. BullMQ's scheduler
 * makes one job per night however many processes register it; the job itself is idempotent and
 * takes a per-tenant lock, so a re-run (a retry, a stalled job picked up by another worker) is safe.
 */
jobSchedule(PARTITIONS_SCHEDULER_ID, () => ({
  queue: READINGS_MAINTENANCE_QUEUE,
  pattern: inject(AppConfig).readingsMaintenanceCron,
  job: {
    name: READINGS_MAINTENANCE_JOBS.partitions,
    data: {},
    opts: {
      attempts: 3,
      backoff: {type: "exponential", delay: 60_000},
      removeOnComplete: {age: 7 * 24 * 3600},
      removeOnFail: {age: 30 * 24 * 3600}
    }
  }
}));
