import {jobSchedule} from "../../platform/queue/job-scheduler.js";

/** The BullMQ queue of webhook deliveries and of the outbox sweep. */
export const NOTIFICATIONS_QUEUE = "notifications";

export const NOTIFICATIONS_JOBS = {
  /** One attempt of one delivery: `{tenantId, deliveryId, attempt}`. */
  deliver: "deliver-webhook",
  /** Scheduled: relays what no NOTIFY woke a relay for, and re-enqueues deliveries whose job was lost. */
  sweep: "outbox-sweep"
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
