/** Queue names are constants: producers, workers and schedulers must agree on them. */
export const AGGREGATION_QUEUE = "aggregation";
export const ALL_QUEUES = [AGGREGATION_QUEUE];

/** Jobs of the aggregation queue. */
export const AGGREGATION_JOBS = {
  /** Scheduled nightly: enqueues one `tenant` job per registered tenant. */
  nightlyFanOut: "nightly-fan-out",
  /** Recomputes one local day of one tenant's DailyStats from its raw readings. */
  tenant: "aggregate-tenant"
} as const;

/** The job scheduler (kept in Redis across deploys) that fires the nightly fan-out. */
export const NIGHTLY_SCHEDULER_ID = "nightly-aggregation";
