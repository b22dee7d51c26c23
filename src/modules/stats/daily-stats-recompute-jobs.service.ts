import {randomUUID} from "node:crypto";
import {Inject, Injectable, Logger} from "@tsed/common";
import {InjectQueue} from "@tsed/bullmq";
import {type Job, type JobsOptions, type Queue, UnrecoverableError} from "bullmq";
import {isUnavailable} from "../../common/error-mapping.js";
import {InvalidInputError, NotFoundError, ServiceUnavailableError} from "../../common/errors.js";
import {keptSince} from "../../common/raw-retention.js";
import {lastDayPastRetention} from "../../common/raw-retention.js";
import {RedisClient} from "../../platform/cache/redis.provider.js";
import {withTimeout} from "../../platform/async/with-timeout.js";
import {isValidTenantId} from "../../platform/tenancy/tenant-id.js";
import {TenantRegistry} from "../../platform/tenancy/tenant-registry.repository.js";
import {AGGREGATION_JOBS, AGGREGATION_QUEUE} from "./daily-stats-recompute.queue.js";
import {DailyStatsRecomputeService, type RecomputeProgress} from "./daily-stats-recompute.service.js";
import {isStrictDate} from "../../platform/validation/strict-formats.js";
import {addDays, localDate} from "../../common/local-time.js";
import {WeeklyStatsCache} from "./weekly-stats.cache.js";

/** Every payload carries its tenant and, for one day, the local day (resolved when it was enqueued). */
export interface AggregationPayload {
  tenantId: string;
  date: string;
  trigger: "nightly" | "manual";
}

/** Every local day of a tenant (its timezone changed). */
export interface TenantRecomputePayload {
  tenantId: string;
  trigger: "timezone";
}

export type AggregationState = "waiting" | "active" | "completed" | "failed" | "delayed" | "unknown";

export interface AggregationStatus {
  jobId: string;
  tenantId: string;
  /** The day a one-day job recomputes; null for every day of the tenant. */
  date: string | null;
  trigger: string;
  state: AggregationState;
  progress: number;
  devicesDone: number | null;
  devicesTotal: number | null;
  daysDone: number | null;
  daysTotal: number | null;
  attemptsMade: number;
  /** Only once completed. */
  result?: AggregationResult;
  failedReason: string | null;
  enqueuedAt: Date;
  finishedAt: Date | null;
}

/** What a job did: one day, or every day of the tenant summed up (`date` null). */
export interface AggregationResult {
  tenantId: string;
  date: string | null;
  days: number;
  devices: number;
  readings: number;
  statsWritten: number;
  statsDeleted: number;
}

interface JobProgress extends RecomputeProgress {
  percent: number;
  daysDone?: number;
  daysTotal?: number;
}

const TENANT_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: {type: "exponential", delay: 30_000},
  removeOnComplete: {age: 7 * 24 * 3600},
  removeOnFail: {age: 30 * 24 * 3600}
};
const REDIS_TIMEOUT_MS = 3_000;
/** How long a timezone recompute waits when it could not be released right after the change. */
const PARKED_MS = 3_600_000;
const FAN_OUT_PAGE = 500;
const PROGRESS_LOG_INTERVAL_MS = 10_000;

/**
 * The nightly job's id names the tenant and the day: a second fan-out of the same night (a retry,
 * two schedulers racing) adds nothing, so each tenant's day runs once however many workers listen.
 */
export const nightlyJobId = (tenantId: string, date: string) => `aggregate.${tenantId}.${date}`;

/** An admin's request for a day: one job per (tenant, day) at a time (see enqueue). */
export const manualJobId = (tenantId: string, date: string) => `manual.${tenantId}.${date}`;

/** Enqueues, runs and reports DailyStats aggregation jobs (BullMQ queue `aggregation`). */
@Injectable()
export class DailyStatsRecomputeJobsService {
  @InjectQueue(AGGREGATION_QUEUE)
  private queue!: Queue<AggregationPayload | TenantRecomputePayload>;

  @Inject()
  private tenants!: TenantRegistry;

  @Inject()
  private recompute!: DailyStatsRecomputeService;

  @Inject()
  private cache!: WeeklyStatsCache;

  @Inject()
  private logger!: Logger;

  /** The app's fail-fast client to the same Redis: its state answers "is Redis up?" at once. */
  @Inject(RedisClient)
  private redisClient!: RedisClient;

  /** An admin's request: the given local day (default: yesterday in the tenant's timezone). */
  async enqueue(tenantId: string, date?: string): Promise<{jobId: string}> {
    const tenant = await this.tenants.find(tenantId);
    const today = localDate(new Date(), tenant?.timezone ?? "UTC");
    const day = date ?? addDays(today, -1);
    if (!isStrictDate(day)) throw new InvalidInputError(`"${day}" is not a date (YYYY-MM-DD)`);
    if (day > today) throw new InvalidInputError(`${day} is in the future in the tenant's timezone (today is ${today})`);
    const pastRetention = this.pastRawRetention(day, tenant?.timezone ?? "UTC", tenant?.rawRetentionDays ?? null);
    if (pastRetention) throw new InvalidInputError(pastRetention);
    const payload: AggregationPayload = {tenantId, date: day, trigger: "manual"};
    // One job per (tenant, day): a repeat while it is pending gets the same job, not another one
    // (an admin cannot fill the queue); once it has finished, asking again runs it again.
    const jobId = manualJobId(tenantId, day);
    const existing = await this.redis(() => this.queue.getJob(jobId));
    if (existing) {
      const state = await this.redis(() => existing.getState());
      if (state !== "completed" && state !== "failed") return {jobId};
      await this.redis(() => existing.remove()).catch(() => undefined);
    }
    const job = await this.redis(() => this.queue.add(AGGREGATION_JOBS.tenant, payload, {...TENANT_JOB_OPTIONS, jobId}));
    return {jobId: job.id!};
  }

  /**
   * Changes the tenant's timezone (`change`) and recomputes every local day with readings in the
   * new zone (the old zone's days disappear), as a job whose id is returned. The job is enqueued
   * parked (delayed an hour) before the change and released after it: a change that fails leaves
   * no job behind, and a change always has its job, even when Redis fails in between (it then runs
   * an hour later).
   */
  async changeTimezone<T>(tenantId: string, change: () => Promise<T>): Promise<{result: T; jobId: string}> {
    const payload: TenantRecomputePayload = {tenantId, trigger: "timezone"};
    const parked = await this.redis(() =>
      this.queue.add(AGGREGATION_JOBS.tenantAllDays, payload, {
        ...TENANT_JOB_OPTIONS,
        jobId: `timezone.${tenantId}.${randomUUID()}`,
        delay: PARKED_MS
      })
    );
    let result: T;
    try {
      result = await change();
    } catch (error) {
      await this.redis(() => parked.remove()).catch(() => undefined);
      throw error;
    }
    await this.redis(() => parked.promote()).catch((error: unknown) =>
      this.logger.warn({
        event: "TIMEZONE_RECOMPUTE_DELAYED",
        tenantId,
        jobId: parked.id,
        delayMs: PARKED_MS,
        error_message: (error as Error)?.message
      })
    );
    // Cached weekly summaries were counted in the old local days.
    await this.cache.invalidateTenant(tenantId);
    return {result, jobId: parked.id!};
  }

  /** A job of the caller's tenant; another tenant's job is "not found". */
  async status(tenantId: string, jobId: string): Promise<AggregationStatus> {
    const job = await this.redis(() => this.queue.getJob(jobId));
    const oneDay = job?.name === AGGREGATION_JOBS.tenant;
    if (!job || !(oneDay || job.name === AGGREGATION_JOBS.tenantAllDays) || job.data?.tenantId !== tenantId)
      throw new NotFoundError("Aggregation job", jobId);
    const state = (await this.redis(() => job.getState())) as string;
    const progress = typeof job.progress === "object" ? (job.progress as unknown as JobProgress) : undefined;
    const completed = state === "completed";
    return {
      jobId: job.id!,
      tenantId: job.data.tenantId,
      date: "date" in job.data ? job.data.date : null,
      trigger: job.data.trigger,
      state: (["waiting", "active", "completed", "failed", "delayed"].includes(state)
        ? state
        : state === "prioritized" || state === "waiting-children"
          ? "waiting"
          : "unknown") as AggregationState,
      progress: completed ? 100 : (progress?.percent ?? 0),
      devicesDone: oneDay ? (progress?.devicesDone ?? null) : null,
      devicesTotal: oneDay ? (progress?.devicesTotal ?? null) : null,
      daysDone: oneDay ? null : (progress?.daysDone ?? null),
      daysTotal: oneDay ? null : (progress?.daysTotal ?? null),
      attemptsMade: job.attemptsMade,
      result: completed ? (job.returnvalue as AggregationResult) : undefined,
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
    let tenants = 0;
    for await (const page of this.tenants.pages(FAN_OUT_PAGE)) {
      await this.queue.addBulk(
        page.map(({id, timezone}) => {
          const date = addDays(this.localToday(now, id, timezone), -1);
          return {
            name: AGGREGATION_JOBS.tenant,
            data: {tenantId: id, date, trigger: "nightly" as const},
            opts: {...TENANT_JOB_OPTIONS, jobId: nightlyJobId(id, date)}
          };
        })
      );
      tenants += page.length;
      await job?.updateProgress({tenants});
    }
    this.logger.info({event: "NIGHTLY_AGGREGATION_FANNED_OUT", tenants});
    return {tenants};
  }

  /**
   * Why a local day can no longer be recomputed, or undefined: its raw readings start before the
   * raw retention's keptSince, so some (or all) of them are dropped and a recompute would replace
   * the DailyStats computed while they were all there. (The nightly job's yesterday never is:
   * it began at most 48 hours ago, and the smallest retention is MIN_RAW_RETENTION_DAYS.)
   */
  private pastRawRetention(day: string, timezone: string, rawRetentionDays: number | null): string | undefined {
    const lastPast = lastDayPastRetention(rawRetentionDays, timezone);
    if (lastPast === null || day > lastPast) return undefined;
    return `${day} is past the tenant's raw retention (${rawRetentionDays} days, readings before ${keptSince(rawRetentionDays)!.toISOString()} are not kept): its DailyStats are kept as they are and cannot be recomputed`;
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

  /** The one-day job: recompute the day, reporting progress per chunk and logging long runs. */
  async run(payload: AggregationPayload, job: Job): Promise<AggregationResult> {
    if (!isValidTenantId(payload?.tenantId) || !(typeof payload?.date === "string" && isStrictDate(payload.date))) {
      throw new UnrecoverableError("invalid aggregation payload");
    }
    const {tenantId, date} = payload;
    const tenant = await this.tenants.find(tenantId);
    // Enqueued before the retention was shortened, say: recomputing would replace kept DailyStats with what is left of the day.
    const pastRetention = this.pastRawRetention(date, tenant?.timezone ?? "UTC", tenant?.rawRetentionDays ?? null);
    if (pastRetention) throw new UnrecoverableError(pastRetention);
    const report = this.progressReporter(job, {tenantId, date});
    const result = await this.failingSafely(job, () =>
      this.recompute.recomputeDay(tenantId, date, {
        onProgress: (progress) => report({...progress, percent: percentOf(progress.devicesDone, progress.devicesTotal)})
      })
    );
    this.logger.info({event: "AGGREGATION_COMPLETED", jobId: job.id, ...result, durationMs: Date.now() - job.processedOn!});
    return {...result, days: 1};
  }

  /** The every-day job (timezone change): progress counts days. */
  async runTenant(payload: TenantRecomputePayload, job: Job): Promise<AggregationResult> {
    if (!isValidTenantId(payload?.tenantId)) throw new UnrecoverableError("invalid aggregation payload");
    const {tenantId} = payload;
    const report = this.progressReporter(job, {tenantId});
    const days = await this.failingSafely(job, () =>
      this.recompute.recomputeTenant(tenantId, (progress) =>
        report({...progress, percent: percentOf(progress.daysDone, progress.daysTotal)})
      )
    );
    const total = (key: "readings" | "statsWritten" | "statsDeleted") => days.reduce((sum, day) => sum + day[key], 0);
    const result: AggregationResult = {
      tenantId,
      date: null,
      days: days.length,
      devices: Math.max(0, ...days.map((day) => day.devices)),
      readings: total("readings"),
      statsWritten: total("statsWritten"),
      statsDeleted: total("statsDeleted")
    };
    this.logger.info({event: "AGGREGATION_COMPLETED", jobId: job.id, ...result, durationMs: Date.now() - job.processedOn!});
    return result;
  }

  /** The scheduled repair: recomputes the days failed merges left behind. */
  repairDirtyDays(): Promise<{repaired: number}> {
    return this.recompute.repairDirtyDays();
  }

  /** Stores progress on the job, and logs it every PROGRESS_LOG_INTERVAL_MS of a long run. */
  private progressReporter(job: Job, context: Record<string, unknown>) {
    let lastLog = Date.now();
    return async (progress: JobProgress) => {
      await job.updateProgress(progress);
      if (Date.now() - lastLog >= PROGRESS_LOG_INTERVAL_MS) {
        lastLog = Date.now();
        this.logger.info({event: "AGGREGATION_PROGRESS", jobId: job.id, ...context, ...progress});
      }
    };
  }

  /**
   * A job's failure reason is shown to the tenant's admins (GET /admin/aggregations/:jobId): it
   * says what kind of failure it was, never a database's own message (logged here instead).
   */
  private async failingSafely<T>(job: Job, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      this.logger.error({
        event: "AGGREGATION_FAILED",
        jobId: job.id,
        error_name: (error as Error)?.name,
        error_message: (error as Error)?.message
      });
      throw new Error(
        isUnavailable(error) ? "A database was unavailable; the job is retried" : "The recompute failed; the server's log has the cause",
        {cause: error}
      );
    }
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

const percentOf = (done: number, total: number) => Math.floor((100 * done) / Math.max(1, total));
