import type {EntityManager} from "@mikro-orm/core";
import {context, Inject, Injectable, Logger} from "@tsed/common";
import type {AfterTransactionCommit} from "@tsed/mikro-orm";
import {GroupCommitLanes} from "../../platform/async/group-commit-lanes.js";
import {withTimeout} from "../../platform/async/with-timeout.js";
import {lostBackendOf} from "../../platform/db/lost-connection.js";
import {DEFAULT_CONTEXT} from "../../platform/db/orm-contexts.js";
import type {DayTotalsByDevice} from "./day-totals.js";
import {DailyStatsRepository, type WriteDayTotal} from "./daily-stats.repository.js";
import {DirtyDaysRepository} from "./dirty-days.repository.js";
import {WeeklyStatsCache} from "./weekly-stats.cache.js";

/** Past this, the request stops waiting for the refresh (it goes on in the background). */
export const REFRESH_BUDGET_MS = 2_000;

/** Writes merged by one refresh at the most (far more than commit during one merge). */
const MAX_WRITES_PER_REFRESH = 10_000;

/**
 * Refresh lanes at most. A refresh takes the first lane whose merge has not run longer than
 * STALLED_AFTER_MS: under load one lane gathers every tenant's writes (11 writes per merge spread
 * over 200 tenants, against 2.5 with four lanes chosen by tenant; bench:multitenant), and a merge
 * waiting for a recompute's lock on a day (nightly aggregation) holds up only what it had
 * gathered, while later refreshes take the next lane. A refresh of a tenant of a stalled merge
 * goes behind that merge instead: which of the merge's tenants the lock holds up is not known, and
 * in the next lane such a refresh would stall that lane too, until every lane waited on one
 * tenant's day (a tenant gathered into the stalled merge by chance waits a little longer with it).
 * Merges of one tenant may still run side by side: they add up in any order, and take their locks
 * in one order (mergeDailyStatsSql).
 */
const REFRESH_LANES = 4;

/** A merge running longer than this waits for a lock: later refreshes take the next lane. */
const STALLED_AFTER_MS = 50;

/** A lane's merge while it runs: when it started, and the tenants of its writes. */
interface RunningMerge {
  startedAt: number;
  tenants: ReadonlySet<string>;
}

/** Where a `@Transactional` write's totals wait for its COMMIT: its DI context (request, job or MQTT message), under this key. */
const PENDING_KEY = Symbol("DailyStatsRefreshService.pending");

/**
 * Keeps DailyStats in line with the readings as they are written: the one owner of the refresh
 * after a write. The writer of readings hands over the totals per local day of what it inserted
 * (`dayTotalsSql`, computed by its own INSERT), by one of two calls, each named for when it applies:
 * - `committed(...)`: the write has committed already (an autocommitted statement);
 * - `afterCommit(...)`: inside a `@Transactional` write; this service's AfterTransactionCommit hook
 *   merges the totals once that transaction has committed, before the write's caller gets its
 *   answer. A rolled-back attempt merges nothing: the retried attempt's call replaces its totals.
 *
 * One statement merges them into analytics (merge_daily_stats: count, min, max, weighted mean of
 * what is there and what was added, skipping writes a recompute of the day has counted already)
 * and one Redis round trip invalidates the devices' cached weekly summaries. It never throws: the
 * readings are committed already. The days it could not merge are remembered (DirtyDaysRepository)
 * and recomputed by the repair job. Refreshes arriving while one of the same lane (REFRESH_LANES)
 * runs are merged together as soon as it ends, like a group commit (GroupCommitLanes), whatever their
 * tenants: under load one refresh (one statement, one Redis round trip) serves many writes instead
 * of one each, and each writer still waits for the refresh that includes its readings.
 */
@Injectable()
export class DailyStatsRefreshService implements AfterTransactionCommit {
  @Inject()
  private dailyStats!: DailyStatsRepository;

  @Inject()
  private dirtyDays!: DirtyDaysRepository;

  @Inject()
  private cache!: WeeklyStatsCache;

  @Inject()
  private logger!: Logger;

  /** A few lanes shared by the tenants (laneOf): the merge statement takes several tenants' totals (mergeDailyStatsSql). */
  private readonly refreshes = new GroupCommitLanes<DayTotalsByDevice, void>(
    async (lane, writes) => {
      this.merging[Number(lane)] = {startedAt: performance.now(), tenants: new Set(writes.map((write) => write.tenantId))};
      try {
        await this.merge(writes);
      } finally {
        this.merging[Number(lane)] = undefined;
      }
      return writes.map(() => undefined);
    },
    {windowMs: 0, maxSize: MAX_WRITES_PER_REFRESH, metricName: "daily_stats_refresh"}
  );

  /** Each lane's running merge (undefined: none runs). */
  private readonly merging: (RunningMerge | undefined)[] = new Array<undefined>(REFRESH_LANES).fill(undefined);

  /**
   * Merges readings that are committed. Waits for the refresh that includes them, so a reader
   * never sees a summary older than a write it was told about; the budget only bounds how long a
   * slow analytics database can hold the response.
   */
  async committed(written: DayTotalsByDevice): Promise<void> {
    const outcome = await withTimeout(
      this.refreshes.submit(this.laneOf(written.tenantId), written),
      REFRESH_BUDGET_MS,
      () => "late" as const
    );
    if (outcome === "late") this.logger.warn({event: "DAILY_STATS_REFRESH_SLOW", tenantId: written.tenantId, budgetMs: REFRESH_BUDGET_MS});
  }

  /**
   * Inside a `@Transactional` write (one per DI context: a request, a job or an MQTT message writes
   * one device's readings in it): merged by `$afterTransactionCommit` once the transaction commits.
   */
  afterCommit(written: DayTotalsByDevice): void {
    const $ctx = context();
    if (!$ctx) throw new Error("DailyStatsRefreshService.afterCommit outside a DI context: the commit hook could not find the totals");
    $ctx.set(PENDING_KEY, written);
  }

  /**
   * @tsed/mikro-orm calls this after every context's `@Transactional` commits; only the default
   * context writes readings (and this hook's own analytics writes must not call it again).
   */
  async $afterTransactionCommit(em: EntityManager): Promise<EntityManager> {
    if (em.name !== DEFAULT_CONTEXT) return em;
    const $ctx = context();
    const pending = $ctx?.get<DayTotalsByDevice | undefined>(PENDING_KEY);
    if (!$ctx || !pending) return em;
    $ctx.delete(PENDING_KEY);
    await this.committed(pending);
    return em;
  }

  /**
   * A write of these readings failed without knowing whether it committed: its connection was lost
   * or Postgres went away, perhaps once COMMIT had reached it. If it did commit, its readings are
   * stored and their totals never merged, and the client's retry finds them stored already and
   * adds nothing. So their local days go to the repair job, which recomputes them from the raw
   * readings whatever happened (a write that did not commit costs it one recompute), once the
   * backend that served the write, if known (lostBackendOf), has ended: until then it may still
   * commit. Never throws: while the database is unreachable the mark fails too, and the days are
   * left to the nightly recompute of the previous day.
   */
  async outcomeUnknown(tenantId: string, readings: readonly {recordedAt: Date}[], error: unknown): Promise<void> {
    const backend = lostBackendOf(error);
    await this.markForRepair({event: "READINGS_WRITE_OUTCOME_UNKNOWN", tenantId, readings: readings.length, backend}, error, () =>
      this.dirtyDays.markLocalDaysOf(
        tenantId,
        readings.map((reading) => reading.recordedAt),
        backend
      )
    );
  }

  /**
   * The lane of a stalled merge of the tenant, if one is; else the first lane whose merge, if one
   * runs, has not stalled (the last lane when every one has).
   */
  private laneOf(tenantId: string): string {
    const now = performance.now();
    const stalled = (merge: RunningMerge | undefined): merge is RunningMerge =>
      merge !== undefined && now - merge.startedAt >= STALLED_AFTER_MS;
    const behind = this.merging.findIndex((merge) => stalled(merge) && merge.tenants.has(tenantId));
    const free = this.merging.findIndex((merge) => !stalled(merge));
    return String([behind, free].find((lane) => lane !== -1) ?? REFRESH_LANES - 1);
  }

  /** Shutdown: resolves once every refresh handed over so far is merged (or given up). */
  flush(): Promise<void> {
    return this.refreshes.flush();
  }

  /**
   * One statement and one Redis round trip for every write of the group, whatever their tenants,
   * sizes and days: spread over many tenants, a lane per tenant would rarely hold more than one
   * write (bench:multitenant).
   */
  private async merge(writes: DayTotalsByDevice[]): Promise<void> {
    const byTenant = new Map<string, WriteDayTotal[]>();
    for (const {tenantId, xid, byDevice} of writes) {
      let totals = byTenant.get(tenantId);
      if (!totals) byTenant.set(tenantId, (totals = []));
      for (const [deviceId, days] of byDevice) for (const day of days) totals.push({deviceId, xid, ...day});
    }
    for (const [tenantId, totals] of byTenant) if (totals.length === 0) byTenant.delete(tenantId);
    if (byTenant.size === 0) return;
    try {
      await this.cache.invalidateMany(await this.dailyStats.merge(byTenant));
    } catch (error) {
      await Promise.all([...byTenant].map(([tenantId, totals]) => this.markDirty(tenantId, totals, error)));
    }
  }

  /** A merge failed: the days are left to the repair job. */
  private async markDirty(tenantId: string, totals: WriteDayTotal[], error: unknown): Promise<void> {
    const dates = [...new Set(totals.map((day) => day.date))];
    const readings = totals.reduce((sum, day) => sum + day.readingCount, 0);
    await this.markForRepair({event: "DAILY_STATS_REFRESH_FAILED", tenantId, dates, readings}, error, () =>
      this.dirtyDays.mark(tenantId, dates)
    );
  }

  /**
   * Logs what went wrong (`what`, with the error's message) and marks the days for the repair job
   * (`mark`). Never throws: a mark that fails too is logged, and its days are left to the nightly
   * recompute of the previous day.
   */
  private async markForRepair(
    what: {event: string; tenantId: string} & Record<string, unknown>,
    error: unknown,
    mark: () => Promise<void>
  ) {
    const {event, ...about} = what;
    this.logger.warn({...what, error_message: (error as Error)?.message, note: "the days are marked for the repair job"});
    await mark().catch((markError: unknown) =>
      this.logger.error({
        event: "DAILY_STATS_DIRTY_DAYS_LOST",
        ...about,
        cause: event,
        error_message: (markError as Error)?.message,
        note: "left to the nightly recompute of yesterday"
      })
    );
  }
}
