import type {EntityManager} from "@mikro-orm/core";
import {Inject, Injectable} from "@tsed/di";
import {Logger} from "@tsed/logger";
import type {AfterTransactionCommit} from "@tsed/mikro-orm";
import {DEFAULT_CONTEXT} from "../../config/mikro-orm.config.js";
import {combineDayTotals, type ReadingsWritten, takeReadingsWritten} from "../readings/readings-written.js";
import {DailyStatsRefresher} from "./daily-stats-refresher.service.js";

/** Past this, the request stops waiting for the refresh (it goes on in the background). */
export const REFRESH_BUDGET_MS = 2_000;

/** Per tenant: the refresh running, and the one collecting what commits meanwhile. */
interface Lane {
  running: Promise<void>;
  next?: {written: ReadingsWritten; done: Promise<void>};
}

/**
 * After a `@Transactional()` write of readings commits, merges what it inserted into the
 * DailyStats of the (device, local day) pairs it touched. The ingestion code records the totals
 * of what it inserted with `recordReadingsWritten(...)`; this takes them once the commit happened.
 *
 * @tsed/mikro-orm calls this hook for the transactions of every context: only the default context
 * (tenant data) writes readings, and the refresh itself writes analytics without `@Transactional`,
 * so it can never trigger itself. It is an "alter" hook: the entity manager goes back unchanged.
 * The hook runs in a fresh MikroORM context (no tenant schema bound), hence the explicit tenant.
 * Concurrent refreshes of a tenant are coalesced (see `coalesced`).
 */
@Injectable()
export class DailyStatsRefreshHook implements AfterTransactionCommit {
  @Inject()
  private refresher!: DailyStatsRefresher;

  @Inject()
  private logger!: Logger;

  async $afterTransactionCommit(em: EntityManager): Promise<EntityManager> {
    if (em.name !== DEFAULT_CONTEXT) return em;
    const written = takeReadingsWritten();
    if (written) await this.refreshCommitted(written);
    return em;
  }

  /**
   * The refresh of readings that are committed: called by the hook above, and directly by the
   * ingestion for a write that was a single autocommitted statement (no transaction, no hook).
   * It never throws; the budget only bounds how long a slow analytics database can hold the
   * response.
   */
  async refreshCommitted(written: ReadingsWritten): Promise<void> {
    const refresh = this.coalesced(written);
    let timer: NodeJS.Timeout | undefined;
    const budget = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), REFRESH_BUDGET_MS);
    });
    const outcome = await Promise.race([refresh, budget]);
    clearTimeout(timer);
    if (outcome === "late") this.logger.warn({event: "DAILY_STATS_REFRESH_SLOW", tenantId: written.tenantId, budgetMs: REFRESH_BUDGET_MS});
  }

  private readonly lanes = new Map<string, Lane>();

  /**
   * Refreshes arriving while one of the same tenant runs are merged and run together as soon as it
   * ends, like a group commit: under load one refresh (one statement, one Redis round trip) serves
   * many requests instead of one each, and each request still waits for the refresh that includes
   * its readings. Readings of different transactions are different readings: their totals add up.
   */
  private coalesced(written: ReadingsWritten): Promise<void> {
    const lane = this.lanes.get(written.tenantId);
    if (!lane) return this.run(written);
    if (lane.next) {
      for (const [deviceId, days] of written.byDevice) {
        lane.next.written.byDevice.set(deviceId, combineDayTotals(lane.next.written.byDevice.get(deviceId) ?? [], days));
      }
      return lane.next.done;
    }
    const next = {written: {tenantId: written.tenantId, byDevice: new Map(written.byDevice)}, done: Promise.resolve()};
    const start = () => this.run(next.written);
    next.done = lane.running.then(start, start);
    lane.next = next;
    return next.done;
  }

  private run(written: ReadingsWritten): Promise<void> {
    const lane: Lane = {running: this.refresher.refreshWritten(written)};
    this.lanes.set(written.tenantId, lane);
    const release = () => {
      if (this.lanes.get(written.tenantId) === lane && !lane.next) this.lanes.delete(written.tenantId);
    };
    void lane.running.then(release, release);
    return lane.running;
  }
}
