import {inject} from "@tsed/common";
import {AppConfig} from "../../config/app-config.js";
import {jobSchedule} from "../../platform/queue/job-scheduler.js";

/** The alerts' queue: the no_data sweep. */
export const ALERTS_QUEUE = "alerts";

export const ALERTS_JOBS = {
  /** Scheduled every NO_DATA_SWEEP_S: opens the episodes of silent devices (NoDataSweep). */
  noDataSweep: "no-data-sweep"
} as const;

export const NO_DATA_SWEEP_SCHEDULER_ID = "no-data-sweep";

/**
 * Every NO_DATA_SWEEP_S, one job whichever instance runs it: BullMQ keeps one scheduler per id,
 * however many processes register it. A sweep that runs twice (a retried job) is harmless: the
 * rules it opens episodes for are locked, and a rule with an open episode is not due.
 */
jobSchedule(NO_DATA_SWEEP_SCHEDULER_ID, () => ({
  queue: ALERTS_QUEUE,
  every: inject(AppConfig).alerts.noDataSweepMs,
  job: {name: ALERTS_JOBS.noDataSweep, data: {}, opts: {removeOnComplete: true, removeOnFail: {age: 3600}}}
}));
