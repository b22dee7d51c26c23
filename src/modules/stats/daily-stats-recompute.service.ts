import {Inject, Injectable, Logger} from "@tsed/common";
import type {Backend} from "../../platform/db/lost-connection.js";
import {TenantRegistry} from "../../platform/tenancy/tenant-registry.repository.js";
import {DailyStatsRepository} from "./daily-stats.repository.js";
import {DirtyDaysRepository} from "./dirty-days.repository.js";
import {addDays} from "../../common/local-time.js";
import {lastDayPastRetention} from "../../common/raw-retention.js";
import {DayTotalsRepository} from "./day-totals.repository.js";
import {WeeklyStatsCache} from "./weekly-stats.cache.js";

/** Devices per statement of the recompute: one aggregate row each, so memory stays flat. */
export const RECOMPUTE_CHUNK = 1_000;

export interface RecomputeProgress {
  devicesDone: number;
  devicesTotal: number;
}

/** A tenant's timezone, and the last local day past its raw retention (null: none is). */
export interface TenantDaySettings {
  timezone: string;
  pastRetention: string | null;
}

export interface RecomputeResult {
  tenantId: string;
  date: string;
  devices: number;
  readings: number;
  /** DailyStats rows inserted or changed. */
  statsWritten: number;
  /** DailyStats rows removed (no readings left that day). */
  statsDeleted: number;
}

/** How recomputeDay runs, beyond its day. */
export interface RecomputeDayOptions {
  /** Told after each chunk of devices (a job's progress). */
  onProgress?: (progress: RecomputeProgress) => Promise<void>;
  /** The tenant's timezone and retention, when the caller read them already (recomputeTenant). */
  settings?: TenantDaySettings;
  /**
   * Invalidate the cached weekly summaries of every device with readings that day, not only of
   * those whose rows changed (the repair of a marked day).
   */
  invalidateEveryDevice?: boolean;
}

/**
 * Recomputes whole local days of a tenant from the raw readings (the nightly job, an admin's
 * request, a timezone change, the repair of days a merge missed). Exact whatever runs meanwhile:
 * the day is locked against merges from before its readings are read until the rows are written,
 * and the rows keep the snapshot they were counted in (merges of writes it saw are skipped). The
 * devices' cached weekly summaries are invalidated once the rows are committed. A day past the
 * tenant's raw retention (lastDayPastRetention) is never recomputed: its rows stay as they were
 * counted while all its readings were there.
 */
@Injectable()
export class DailyStatsRecomputeService {
  @Inject()
  private aggregates!: DayTotalsRepository;

  @Inject()
  private dailyStats!: DailyStatsRepository;

  @Inject()
  private dirtyDays!: DirtyDaysRepository;

  @Inject()
  private cache!: WeeklyStatsCache;

  @Inject()
  private tenants!: TenantRegistry;

  @Inject()
  private logger!: Logger;

  /**
   * One local day of a tenant for all of its devices: one GROUP BY in the tenant schema (readings
   * stream through Postgres, never through Node, which gets one row per device), then upserts of
   * 1,000 rows per statement into analytics, each with a sweep of the rows of devices that have
   * no readings that day any more. Identical rows are not touched, so a second run changes nothing.
   */
  async recomputeDay(tenantId: string, date: string, options: RecomputeDayOptions = {}): Promise<RecomputeResult> {
    const {onProgress, settings, invalidateEveryDevice = false} = options;
    const {timezone: zone, pastRetention} = settings ?? (await this.daySettings(tenantId));
    if (pastRetention !== null && date <= pastRetention) return {tenantId, date, devices: 0, readings: 0, statsWritten: 0, statsDeleted: 0};
    /** The devices whose cached weekly summaries the recompute leaves stale. */
    const stale = new Set<string>();
    const result = await this.dailyStats.withDayLocked(tenantId, date, async (tx) => {
      const {snapshot, rows} = await this.aggregates.forDay(tenantId, date, zone);
      const outcome: RecomputeResult = {tenantId, date, devices: rows.length, readings: 0, statsWritten: 0, statsDeleted: 0};
      await onProgress?.({devicesDone: 0, devicesTotal: rows.length});
      let after: string | undefined;
      let done = 0;
      do {
        const chunk = rows.slice(done, done + RECOMPUTE_CHUNK);
        done += chunk.length;
        // The last chunk's sweep is open-ended: it also covers devices after the last one with readings.
        const upTo = done < rows.length ? chunk.at(-1)!.deviceId : undefined;
        const written = await this.dailyStats.replace(tx, tenantId, chunk, snapshot);
        const deleted = await this.dailyStats.sweep(
          tx,
          tenantId,
          date,
          {after, upTo},
          chunk.map((row) => row.deviceId)
        );
        for (const deviceId of [...written, ...deleted]) stale.add(deviceId);
        if (invalidateEveryDevice) for (const row of chunk) stale.add(row.deviceId);
        outcome.readings += chunk.reduce((sum, row) => sum + row.readingCount, 0);
        outcome.statsWritten += written.length;
        outcome.statsDeleted += deleted.length;
        after = upTo;
        await onProgress?.({devicesDone: done, devicesTotal: rows.length});
      } while (done < rows.length);
      return outcome;
    });
    // After the commit: a reader that refilled the cache before it would keep the old rows.
    await this.cache.invalidate(tenantId, stale);
    return result;
  }

  /**
   * Every local day of the tenant that has readings, in its current timezone, and no row outside
   * them (after a timezone change, the days of the old zone). Progress counts days.
   */
  async recomputeTenant(
    tenantId: string,
    onProgress?: (progress: RecomputeProgress & {daysDone: number; daysTotal: number}) => Promise<void>
  ): Promise<RecomputeResult[]> {
    const settings = await this.daySettings(tenantId);
    let {from, to} = await this.aggregates.dayRange(tenantId, settings.timezone);
    // The days past the raw retention keep their rows, whatever zone they were counted in.
    const firstKept = settings.pastRetention === null ? null : addDays(settings.pastRetention, 1);
    if (firstKept !== null && from !== null && from < firstKept) from = firstKept;
    if (from !== null && to !== null && from > to) from = to = null;
    const days: string[] = [];
    for (let day = from; day !== null && to !== null && day <= to; day = addDays(day, 1)) days.push(day);
    const results: RecomputeResult[] = [];
    for (const [index, day] of days.entries()) {
      results.push(await this.recomputeDay(tenantId, day, {settings}));
      await onProgress?.({daysDone: index + 1, daysTotal: days.length, devicesDone: 0, devicesTotal: 0});
    }
    await this.cache.invalidate(tenantId, await this.dailyStats.removeOutside(tenantId, from, to, settings.pastRetention));
    await this.cache.invalidateTenant(tenantId);
    return results;
  }

  /**
   * The days failed merges, and writes whose outcome is unknown, left behind (oldest first, at
   * most `limit`): recomputed, then unmarked. A day whose write lost its backend waits for that
   * backend to end first (it may still commit): when it will not, the day waits for the next run.
   */
  async repairDirtyDays(limit = 100): Promise<{repaired: number}> {
    let repaired = 0;
    const notEnded = new Set<string>();
    for (const {tenantId, date, markedAt, lostBackends} of await this.dirtyDays.list(limit)) {
      if (!(await this.lostBackendsEnded(lostBackends, notEnded))) continue;
      // Every device of the day, changed or not: a merge that committed but answered an error
      // (its connection lost after COMMIT) left its rows right and its devices' cached weekly
      // summaries stale, and finding the rows right, the recompute alone would invalidate none.
      // A day past the raw retention is left as it is.
      await this.recomputeDay(tenantId, date, {invalidateEveryDevice: true});
      await this.dirtyDays.clear(tenantId, date, markedAt);
      repaired++;
    }
    return {repaired};
  }

  /**
   * Whether these lost backends are gone, ended now when they still ran. One that did not end is
   * not waited for again in this run (`notEnded`): the other days it marked wait for the next.
   */
  private async lostBackendsEnded(backends: readonly Backend[], notEnded: Set<string>): Promise<boolean> {
    const key = ({pid, startedAt}: Backend) => `${pid}@${startedAt}`;
    if (backends.some((backend) => notEnded.has(key(backend)))) return false;
    let running: readonly Backend[];
    let failure: string | undefined;
    try {
      running = await this.dirtyDays.endBackends(backends);
    } catch (error) {
      // Could not tell: taken as still running.
      [running, failure] = [backends, (error as Error)?.message];
    }
    if (running.length === 0) return true;
    for (const backend of running) notEnded.add(key(backend));
    this.logger.warn({
      event: "DAILY_STATS_LOST_BACKEND_RUNNING",
      backends: running,
      error_message: failure,
      note: "its days wait for the next repair"
    });
    return false;
  }

  /** What deciding a tenant's days needs: its timezone and the last day past its raw retention. */
  private async daySettings(tenantId: string): Promise<TenantDaySettings> {
    const tenant = await this.tenants.find(tenantId);
    const timezone = tenant?.timezone ?? "UTC";
    return {timezone, pastRetention: lastDayPastRetention(tenant?.rawRetentionDays ?? null, timezone)};
  }
}
