import {Inject, Injectable} from "@tsed/common";
import {InvalidInputError} from "../../common/errors.js";
import {keptSince, type RawRetentionNotice, rawRetentionNotice} from "../../common/raw-retention.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {TenantRegistry} from "../../platform/tenancy/tenant-registry.repository.js";
import {TenantSettingsCache} from "../../platform/tenancy/tenant-settings.cache.js";
import {DeviceService} from "../devices/device.service.js";
import type {DailyStats} from "./daily-stats.entity.js";
import {DailyStatsRepository} from "./daily-stats.repository.js";
import {addDays, localDate, localHourStart, localIsoString} from "../../common/local-time.js";
import {DayTotalsRepository} from "./day-totals.repository.js";
import {type HourlyStats, MAX_DAILY_RANGE_DAYS, type WeeklyStats} from "./stats.models.js";
import {WeeklyStatsCache} from "./weekly-stats.cache.js";

/** Statistics of one device of the request's tenant: daily rows, the weekly dashboard, hourly buckets. */
@Injectable()
export class StatsService {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private devices!: DeviceService;

  @Inject()
  private tenants!: TenantRegistry;

  @Inject()
  private dailyStats!: DailyStatsRepository;

  @Inject()
  private aggregates!: DayTotalsRepository;

  @Inject()
  private cache!: WeeklyStatsCache;

  @Inject()
  private settings!: TenantSettingsCache;

  /**
   * The rows, and whether the range reaches back to a day whose raw readings are past the raw
   * retention: those rows stay as they were computed, but can no longer be recomputed.
   */
  async daily(deviceId: string, from?: string, to?: string): Promise<{rows: DailyStats[]; rawRetention: RawRetentionNotice}> {
    await this.devices.get(deviceId);
    let end = to;
    let start = from;
    if (!end || !start) {
      end ??= localDate(new Date(), await this.tenants.timezoneOf(this.tenant.tenantId));
      start ??= addDays(end, -29);
    }
    if (start > end) throw new InvalidInputError("`from` must not be after `to`");
    if (addDays(start, MAX_DAILY_RANGE_DAYS) < end) throw new InvalidInputError(`The range spans more than ${MAX_DAILY_RANGE_DAYS} days`);
    const rows = await this.dailyStats.findRange(this.tenant.tenantId, deviceId, start, end);
    const {rawRetentionDays, timezone} = await this.settings.get(this.tenant.tenantId);
    const since = keptSince(rawRetentionDays);
    // The first local day reaches past the retention when it starts before keptSince, i.e. is not after keptSince's local day.
    return {
      rows,
      rawRetention: {days: rawRetentionDays, keptSince: since, reachesPastRetention: since !== null && start <= localDate(since, timezone)}
    };
  }

  /**
   * The last seven local days, from Redis when cached. A cached summary is valid until the
   * device's DailyStats change (the refresh and the nightly job invalidate it) and only for the
   * local day it was computed on. No database statement at all on a hit.
   */
  async weekly(deviceId: string): Promise<WeeklyStats> {
    const tenantId = this.tenant.tenantId;
    const cached = await this.cache.get<WeeklyStats>(tenantId, deviceId);
    if (cached?.body && cached.body.to === localDate(new Date(), cached.body.timezone)) return cached.body;

    await this.devices.get(deviceId);
    const timezone = await this.tenants.timezoneOf(tenantId);
    const to = localDate(new Date(), timezone);
    const from = addDays(to, -6);
    const days = await this.dailyStats.findRange(tenantId, deviceId, from, to);
    const body: WeeklyStats = {deviceId, timezone, from, to, days: days.map(toPlainRow), summary: summarize(days)};
    if (cached) await this.cache.set(tenantId, deviceId, cached.gen, body);
    return body;
  }

  async hourly(deviceId: string, hours: number): Promise<HourlyStats> {
    await this.devices.get(deviceId);
    const tenant = await this.tenants.find(this.tenant.tenantId);
    const timezone = tenant?.timezone ?? "UTC";
    const now = new Date();
    const rows = await this.aggregates.hourly(deviceId, hours, timezone);
    return {
      deviceId,
      timezone,
      hours,
      buckets: rows.map((row) => ({...row, localStart: localIsoString(row.start, timezone)})),
      // The first bucket starts `hours - 1` local hours before the current one (as hourlySql counts them).
      rawRetention: rawRetentionNotice(
        tenant?.rawRetentionDays ?? null,
        new Date(localHourStart(now, timezone).getTime() - (hours - 1) * 3_600_000),
        now
      )
    };
  }
}

/** The JSON form that is cached, so that a hit and a miss answer the same body. */
function toPlainRow(row: DailyStats): DailyStats {
  return {
    id: row.id,
    tenantId: row.tenantId,
    deviceId: row.deviceId,
    date: row.date,
    avgTemperatureCelsius: row.avgTemperatureCelsius,
    minTemperatureCelsius: row.minTemperatureCelsius,
    maxTemperatureCelsius: row.maxTemperatureCelsius,
    readingCount: row.readingCount,
    updatedAt: row.updatedAt
  };
}

function summarize(days: DailyStats[]): WeeklyStats["summary"] {
  const readingCount = days.reduce((sum, day) => sum + day.readingCount, 0);
  if (readingCount === 0)
    return {readingCount: 0, daysWithData: 0, avgTemperatureCelsius: null, minTemperatureCelsius: null, maxTemperatureCelsius: null};
  return {
    readingCount,
    daysWithData: days.length,
    avgTemperatureCelsius: days.reduce((sum, day) => sum + day.avgTemperatureCelsius * day.readingCount, 0) / readingCount,
    minTemperatureCelsius: Math.min(...days.map((day) => day.minTemperatureCelsius)),
    maxTemperatureCelsius: Math.max(...days.map((day) => day.maxTemperatureCelsius))
  };
}
