import {Inject, Injectable} from "@tsed/di";
import {TenantRegistry} from "../../platform/tenancy/tenant-registry.repository.js";
import {DailyStatsRepository} from "./daily-stats.repository.js";
import {ReadingAggregatesRepository} from "./reading-aggregates.repository.js";
import {WeeklyStatsCache} from "./weekly-stats.cache.js";

/** Devices per statement of the recompute: one aggregate row each, so memory stays flat. */
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
 * Recomputes whole local days of a tenant from the raw readings (the nightly job, an admin's
 * request): this also repairs whatever a failed or skipped after-commit merge left behind. Every
 * change invalidates the device's cached weekly summary.
 */
@Injectable()
export class DailyStatsRecompute {
  @Inject()
  private aggregates!: ReadingAggregatesRepository;

  @Inject()
  private dailyStats!: DailyStatsRepository;

  @Inject()
  private cache!: WeeklyStatsCache;

  @Inject()
  private tenants!: TenantRegistry;

  /**
   * One local day of a tenant for all of its devices: one GROUP BY in the tenant schema (readings
   * stream through Postgres, never through Node, which gets one row per device), then upserts of
   * 1,000 rows per statement into analytics, each with a sweep of the rows of devices that have
   * no readings that day any more. Identical rows are not touched, so a second run changes nothing.
   */
  async recomputeDay(tenantId: string, date: string, onProgress?: (progress: RecomputeProgress) => Promise<void>): Promise<RecomputeResult> {
    const rows = await this.aggregates.forDay(tenantId, date, await this.tenants.timezoneOf(tenantId));
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

  /** The tenant's local days moved: every cached weekly summary of it is stale. */
  async timezoneChanged(tenantId: string): Promise<void> {
    await this.cache.invalidateTenant(tenantId);
  }
}
