import {inject} from "@tsed/common";
import {AppConfig} from "../../config/app-config.js";
import {jobSchedule} from "../../platform/queue/job-scheduler.js";

/** The BullMQ queue of webhook deliveries and of the outbox sweep. */
export const NOTIFICATIONS_QUEUE = "notifications";

export const NOTIFICATIONS_JOBS = {
  /** One attempt of one delivery: `{tenantId, deliveryId, attempt}`. */
  deliver: "deliver-webhook",
  /** Scheduled: relays what no NOTIFY woke a relay for, and re-enqueues deliveries whose job was lost. */
  sweep: "outbox-sweep",
  /** Scheduled every NOTIFY_SCAN_S: ended silences send what they held back; due reminders. */
  scan: "notifications-scan",
  /** Scheduled daily: dispatched events past OUTBOX_RETENTION_DAYS are deleted. */
  purge: "outbox-purge"
} as const;

export interface DeliverPayload {
  tenantId: string;
  deliveryId: string;
  /** The attempt this job makes (from 1): a job for an attempt already made does nothing. */
  attempt: number;
}

/** One job per attempt: adding the same attempt twice (relay and sweep racing) adds it once. */
export const deliverJobId = (payload: DeliverPayload) => `${payload.tenantId}.${payload.deliveryId}.${payload.attempt}`;

export const SWEEP_SCHEDULER_ID = "outbox-sweep";

/** Every 10 s (a six-field cron pattern: seconds first), on one worker whichever instance runs it. */
jobSchedule(SWEEP_SCHEDULER_ID, () => ({
  queue: NOTIFICATIONS_QUEUE,
  pattern: "*/10 * * * * *",
  job: {name: NOTIFICATIONS_JOBS.sweep, data: {}, opts: {removeOnComplete: true, removeOnFail: {age: 3600}}}
}));

export const SCAN_SCHEDULER_ID = "notifications-scan";
export const PURGE_SCHEDULER_ID = "outbox-purge";

jobSchedule(SCAN_SCHEDULER_ID, () => ({
  queue: NOTIFICATIONS_QUEUE,
  every: inject(AppConfig).notifications.scanMs,
  job: {name: NOTIFICATIONS_JOBS.scan, data: {}, opts: {removeOnComplete: true, removeOnFail: {age: 3600}}}
}));

/** Daily at 03:40 UTC: a quiet hour, away from the nightly aggregation and the partition maintenance. */
jobSchedule(PURGE_SCHEDULER_ID, () => ({
  queue: NOTIFICATIONS_QUEUE,
  pattern: "40 3 * * *",
  job: {name: NOTIFICATIONS_JOBS.purge, data: {}, opts: {removeOnComplete: {age: 7 * 86_400}, removeOnFail: {age: 7 * 86_400}}}
}));
