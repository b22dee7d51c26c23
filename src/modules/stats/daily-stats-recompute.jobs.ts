import {Inject} from "@tsed/common";
import {JobController, type JobMethods} from "@tsed/bullmq";
import type {Job} from "bullmq";
import {jobDuration} from "../../platform/observability/metrics.js";
import {AGGREGATION_JOBS, AGGREGATION_QUEUE} from "./daily-stats-recompute.queue.js";
import {
  type AggregationPayload,
  type AggregationResult,
  DailyStatsRecomputeJobsService,
  type TenantRecomputePayload
} from "./daily-stats-recompute-jobs.service.js";

/** Fired by the nightly job scheduler: one aggregation job per registered tenant. */
@JobController(AGGREGATION_JOBS.nightlyFanOut, AGGREGATION_QUEUE)
export class NightlyFanOutJob implements JobMethods<Record<string, never>, {tenants: number}> {
  @Inject()
  private aggregations!: DailyStatsRecomputeJobsService;

  handle(_payload: Record<string, never>, job: Job) {
    return timed(job, () => this.aggregations.fanOut(job));
  }
}

/** Recomputes one local day of one tenant's DailyStats (nightly or on an admin's request). */
@JobController(AGGREGATION_JOBS.tenant, AGGREGATION_QUEUE)
export class AggregateTenantJob implements JobMethods<AggregationPayload, AggregationResult> {
  @Inject()
  private aggregations!: DailyStatsRecomputeJobsService;

  handle(payload: AggregationPayload, job: Job<AggregationPayload, AggregationResult>) {
    return timed(job, () => this.aggregations.run(payload, job));
  }
}

/** Recomputes every local day of one tenant (its timezone changed). */
@JobController(AGGREGATION_JOBS.tenantAllDays, AGGREGATION_QUEUE)
export class RecomputeTenantJob implements JobMethods<TenantRecomputePayload, AggregationResult> {
  @Inject()
  private aggregations!: DailyStatsRecomputeJobsService;

  handle(payload: TenantRecomputePayload, job: Job<TenantRecomputePayload, AggregationResult>) {
    return timed(job, () => this.aggregations.runTenant(payload, job));
  }
}

/** Scheduled: recomputes the days failed merges left behind. */
@JobController(AGGREGATION_JOBS.repairDirtyDays, AGGREGATION_QUEUE)
export class RepairDirtyDaysJob implements JobMethods<Record<string, never>, {repaired: number}> {
  @Inject()
  private aggregations!: DailyStatsRecomputeJobsService;

  handle(_payload: Record<string, never>, job: Job) {
    return timed(job, () => this.aggregations.repairDirtyDays());
  }
}

/** `job_duration_seconds{queue,name,outcome}` for every run, failed ones included. */
async function timed<T>(job: Job, run: () => Promise<T>): Promise<T> {
  const end = jobDuration.startTimer({queue: job.queueName, name: job.name});
  try {
    const result = await run();
    end({outcome: "completed"});
    return result;
  } catch (error) {
    end({outcome: "failed"});
    throw error;
  }
}
