import {Inject, Injectable} from "@tsed/di";
import {Logger} from "@tsed/logger";
import type {ReadingsWritten} from "../readings/readings-written.js";
import {DailyStatsRepository} from "./daily-stats.repository.js";
import {type DayAggregate, ReadingAggregatesRepository} from "./reading-aggregates.repository.js";
import {TenantSettingsRepository} from "./tenant-settings.repository.js";
import {WeeklyStatsCache} from "./weekly-stats.cache.js";

/** Devices per statement of the nightly recompute: one aggregate row each, so memory stays flat. */
export const RECOMPUTE_CHUNK = 1_000;

export interface RecomputeProgress {
  devicesDone: number;
  devicesTotal: number;
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

/**
 * Keeps DailyStats (analytics database) in line with the raw readings (tenant schema): right after
 * a write commits, by merging what it inserted into the days it touched, and nightly, by
 * recomputing a whole local day of a tenant from the readings, which also repairs whatever a
 * failed or skipped merge left behind. Every change invalidates the device's cached weekly summary.
 */
@Injectable()
export class DailyStatsRefresher {
  @Inject()
  private aggregates!: ReadingAggregatesRepository;

  @Inject()
  private dailyStats!: DailyStatsRepository;

  @Inject()
  private cache!: WeeklyStatsCache;

  @Inject()
  private settings!: TenantSettingsRepository;

  @Inject()
  private logger!: Logger;

  /**
   * The after-commit refresh: one statement (the totals the write recorded per device and local
   * day, merged into analytics) and one Redis round trip, whatever the batch size, and whatever the
   * day already holds. It never throws: the readings are committed already, and a day it could not
   * refresh is recomputed by the nightly job. (A retried transaction records only what its
   * committed attempt inserted, see recordReadingsWritten.)
   */
  async refreshWritten(written: ReadingsWritten): Promise<void> {
    const deltas: DayAggregate[] = [];
    for (const [deviceId, days] of written.byDevice) for (const day of days) deltas.push({deviceId, ...day});
    if (deltas.length === 0) return;
    try {
      const changed = await this.dailyStats.merge(written.tenantId, deltas);
      await this.cache.invalidate(written.tenantId, changed);
    } catch (error) {
      this.logger.warn({
        event: "DAILY_STATS_REFRESH_FAILED",
        tenantId: written.tenantId,
        devices: written.byDevice.size,
        readings: deltas.reduce((sum, day) => sum + day.readingCount, 0),
        error_message: (error as Error)?.message,
        note: "left to the nightly aggregation"
      });
    }
  }

  /**
   * Recomputes one local day of a tenant for all of its devices from the raw readings: one
   * GROUP BY in the tenant schema (readings stream through Postgres, never through Node, which
   * gets one row per device), then upserts of 1,000 rows per statement into analytics, each with
   * a sweep of the rows of devices that have no readings that day any more. Identical rows are
   * not touched, so a second run changes nothing.
   */
  async recomputeDay(tenantId: string, date: string, onProgress?: (progress: RecomputeProgress) => Promise<void>): Promise<RecomputeResult> {
    const rows = await this.aggregates.forDay(tenantId, date, await this.settings.timezoneOf(tenantId));
    const result: RecomputeResult = {tenantId, date, devices: rows.length, readings: 0, statsWritten: 0, statsDeleted: 0};
    await onProgress?.({devicesDone: 0, devicesTotal: rows.length});
    let after: string | undefined;
    let done = 0;
    do {
      const chunk = rows.slice(done, done + RECOMPUTE_CHUNK);
      done += chunk.length;
      // The last chunk's sweep is open-ended: it also covers devices after the last one with readings.
      const upTo = done < rows.length ? chunk.at(-1)!.deviceId : undefined;
      const changed = await this.dailyStats.replace(tenantId, chunk);
      const deleted = await this.dailyStats.sweep(tenantId, date, {after, upTo}, chunk.map((row) => row.deviceId));
      await this.cache.invalidate(tenantId, [...changed, ...deleted]);
      result.readings += chunk.reduce((sum, row) => sum + row.readingCount, 0);
      result.statsWritten += changed.length;
      result.statsDeleted += deleted.length;
      after = upTo;
      await onProgress?.({devicesDone: done, devicesTotal: rows.length});
    } while (done < rows.length);
    return result;
  }
}
