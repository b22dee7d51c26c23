import {randomUUID} from "node:crypto";
import {Inject, Injectable} from "@tsed/di";
import {InjectQueue} from "@tsed/bullmq";
import {Logger} from "@tsed/logger";
import {type Job, type JobsOptions, type Queue, UnrecoverableError} from "bullmq";
import {InvalidInputError, NotFoundError, ServiceUnavailableError} from "../../common/errors.js";
import {RedisClient} from "../../platform/cache/redis.provider.js";
import {withTimeout} from "../../platform/async/with-timeout.js";
import {isValidTenantId} from "../../platform/tenancy/tenant-id.js";
import {TenantRegistry} from "../../platform/tenancy/tenant-registry.repository.js";
import {AGGREGATION_JOBS, AGGREGATION_QUEUE} from "./aggregation.queue.js";
import {DailyStatsRecompute, type RecomputeProgress, type RecomputeResult} from "./daily-stats-recompute.service.js";
import {addDays, isCalendarDate, localDate} from "./local-time.js";

/** Every payload carries its tenant (and the local day, resolved when it was enqueued). */
export interface AggregationPayload {
  tenantId: string;
  date: string;
  trigger: "nightly" | "manual";
}

export type AggregationState = "waiting" | "active" | "completed" | "failed" | "delayed" | "unknown";

export interface AggregationStatus {
  jobId: string;
  tenantId: string;
  date: string;
  trigger: string;
  state: AggregationState;
  progress: number;
  devicesDone: number | null;
  devicesTotal: number | null;
  attemptsMade: number;
  /** Only once completed. */
  result?: RecomputeResult;
  failedReason: string | null;
  enqueuedAt: Date;
  finishedAt: Date | null;
}

interface JobProgress extends RecomputeProgress {
  percent: number;
}

const TENANT_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: {type: "exponential", delay: 30_000},
  removeOnComplete: {age: 7 * 24 * 3600},
  removeOnFail: {age: 30 * 24 * 3600}
};
const REDIS_TIMEOUT_MS = 3_000;
const FAN_OUT_PAGE = 500;
const PROGRESS_LOG_INTERVAL_MS = 10_000;

/**
 * The nightly job's id names the tenant and the day: a second fan-out of the same night (a retry,
 * two schedulers racing) adds nothing, so each tenant's day runs once however many workers listen.
 */
export const nightlyJobId = (tenantId: string, date: string) => `aggregate.${tenantId}.${date}`;

/** Enqueues, runs and reports DailyStats aggregation jobs (BullMQ queue `aggregation`). */
@Injectable()
export class AggregationService {
  @InjectQueue(AGGREGATION_QUEUE)
  private queue!: Queue<AggregationPayload>;

  @Inject()
  private tenants!: TenantRegistry;

  @Inject()
  private recompute!: DailyStatsRecompute;

  @Inject()
  private logger!: Logger;

  /** The app's fail-fast client to the same Redis: its state answers "is Redis up?" at once. */
  @Inject(RedisClient)
  private redisClient!: RedisClient;

  /** An admin's request: the given local day (default: yesterday in the tenant's timezone). */
  async enqueue(tenantId: string, date?: string): Promise<{jobId: string}> {
    const today = localDate(new Date(), await this.tenants.timezoneOf(tenantId));
    const day = date ?? addDays(today, -1);
    if (!isCalendarDate(day)) throw new InvalidInputError(`"${day}" is not a date (YYYY-MM-DD)`);
    if (day > today) throw new InvalidInputError(`${day} is in the future in the tenant's timezone (today is ${today})`);
    const payload: AggregationPayload = {tenantId, date: day, trigger: "manual"};
    // A fresh id: an admin asking again (late readings arrived) gets a new run, not the finished one.
    const job = await this.redis(() => this.queue.add(AGGREGATION_JOBS.tenant, payload, {...TENANT_JOB_OPTIONS, jobId: `manual.${tenantId}.${day}.${randomUUID()}`}));
    return {jobId: job.id!};
  }

  /** A job of the caller's tenant; another tenant's job is "not found". */
  async status(tenantId: string, jobId: string): Promise<AggregationStatus> {
    const job = await this.redis(() => this.queue.getJob(jobId));
    if (!job || job.name !== AGGREGATION_JOBS.tenant || job.data?.tenantId !== tenantId) throw new NotFoundError("Aggregation job", jobId);
    const state = (await this.redis(() => job.getState())) as string;
    const progress = typeof job.progress === "object" ? (job.progress as unknown as JobProgress) : undefined;
    const completed = state === "completed";
    return {
      jobId: job.id!,
      tenantId: job.data.tenantId,
      date: job.data.date,
      trigger: job.data.trigger,
      state: (["waiting", "active", "completed", "failed", "delayed"].includes(state) ? state : state === "prioritized" || state === "waiting-children" ? "waiting" : "unknown") as AggregationState,
      progress: completed ? 100 : (progress?.percent ?? 0),
      devicesDone: progress?.devicesDone ?? null,
      devicesTotal: progress?.devicesTotal ?? null,
      attemptsMade: job.attemptsMade,
      result: completed ? (job.returnvalue as RecomputeResult) : undefined,
      failedReason: job.failedReason ?? null,
      enqueuedAt: new Date(job.timestamp),
      finishedAt: job.finishedOn ? new Date(job.finishedOn) : null
    };
  }

  /**
   * The scheduled job: one job per registered tenant for its own local yesterday, with a
   * deterministic id. Tenants are read a page at a time and added in bulk.
   */
  async fanOut(job?: Job): Promise<{tenants: number}> {
    const now = new Date();
    let after = "";
    let tenants = 0;
    for (;;) {
      const page = await this.tenants.listPage(after, FAN_OUT_PAGE);
      if (page.length === 0) break;
      await this.queue.addBulk(
        page.map(({id, timezone}) => {
          const date = addDays(this.localToday(now, id, timezone), -1);
          return {name: AGGREGATION_JOBS.tenant, data: {tenantId: id, date, trigger: "nightly" as const}, opts: {...TENANT_JOB_OPTIONS, jobId: nightlyJobId(id, date)}};
        })
      );
      tenants += page.length;
      after = page.at(-1)!.id;
      await job?.updateProgress({tenants});
    }
    this.logger.info({event: "NIGHTLY_AGGREGATION_FANNED_OUT", tenants});
    return {tenants};
  }

  /** A zone the runtime does not know (edited by hand?) must not stop every other tenant's night. */
  private localToday(now: Date, tenantId: string, timezone: string): string {
    try {
      return localDate(now, timezone);
    } catch {
      this.logger.warn({event: "TENANT_TIMEZONE_INVALID", tenantId, timezone, fallback: "UTC"});
      return localDate(now, "UTC");
    }
  }

  /** The tenant job: recompute the day, reporting progress per chunk and logging long runs. */
  async run(payload: AggregationPayload, job: Job): Promise<RecomputeResult> {
    if (!isValidTenantId(payload?.tenantId) || !isCalendarDate(payload?.date)) {
      throw new UnrecoverableError(`invalid aggregation payload ${JSON.stringify(payload)}`);
    }
    const {tenantId, date} = payload;
    const started = Date.now();
    let lastLog = started;
    const result = await this.recompute.recomputeDay(tenantId, date, async (progress) => {
      const percent = Math.floor((100 * progress.devicesDone) / Math.max(1, progress.devicesTotal));
      await job.updateProgress({...progress, percent} satisfies JobProgress);
      if (Date.now() - lastLog >= PROGRESS_LOG_INTERVAL_MS) {
        lastLog = Date.now();
        this.logger.info({event: "AGGREGATION_PROGRESS", jobId: job.id, tenantId, date, ...progress, elapsedMs: lastLog - started});
      }
    });
    this.logger.info({event: "AGGREGATION_COMPLETED", jobId: job.id, ...result, durationMs: Date.now() - started});
    return result;
  }

  /**
   * A queue call from a request. BullMQ's connection would hold commands until Redis comes back
   * (and run them then): the call is only made on a ready connection, and bounded in time.
   */
  private async redis<T>(call: () => Promise<T>): Promise<T> {
    const unavailable = () => {
      throw new ServiceUnavailableError("The job queue (Redis) is unavailable; retry later");
    };
    if (this.redisClient.status !== "ready") unavailable();
    const client = await withTimeout(this.queue.client, REDIS_TIMEOUT_MS, unavailable);
    if (client.status !== "ready") unavailable();
    return withTimeout(call(), REDIS_TIMEOUT_MS, unavailable);
  }
}
