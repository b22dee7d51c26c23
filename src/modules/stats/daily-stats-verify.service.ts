import {Inject, Injectable} from "@tsed/common";
import {TenantRegistry} from "../../platform/tenancy/tenant-registry.repository.js";
import type {DayTotal, DeviceDayTotal} from "./day-totals.js";
import {DailyStatsRepository} from "./daily-stats.repository.js";
import {addDays} from "../../common/local-time.js";
import {lastDayPastRetention} from "../../common/raw-retention.js";
import {DayTotalsRepository} from "./day-totals.repository.js";

/** A DailyStats row that is not what the raw readings say: `stored` or `expected` is null when the row is missing or should not exist. */
export interface StatsDifference {
  deviceId: string;
  date: string;
  stored: DayTotal | null;
  expected: DayTotal | null;
}

/** Means agree to this relative precision: a floating-point mean depends on the order it was summed in. */
const MEAN_TOLERANCE = 1e-9;

/**
 * Compares a tenant's DailyStats with an aggregation of its raw readings from scratch, in the
 * tenant's current timezone (`npm run stats:verify`). Counts, minima and maxima must be equal,
 * means equal to MEAN_TOLERANCE; a row without readings, or readings without a row, is a
 * difference too.
 */
@Injectable()
export class DailyStatsVerifyService {
  @Inject()
  private aggregates!: DayTotalsRepository;

  @Inject()
  private dailyStats!: DailyStatsRepository;

  @Inject()
  private tenants!: TenantRegistry;

  /** @param from @param to local days, both inclusive (null: unbounded) */
  async verify(tenantId: string, from: string | null = null, to: string | null = null): Promise<StatsDifference[]> {
    const tenant = await this.tenants.find(tenantId);
    const timezone = tenant?.timezone ?? "UTC";
    // Days past the raw retention keep the rows counted while their readings were all there: not comparable any more.
    const pastRetention = lastDayPastRetention(tenant?.rawRetentionDays ?? null, timezone);
    if (pastRetention !== null && (from === null || from <= pastRetention)) from = addDays(pastRetention, 1);
    if (to !== null && from !== null && from > to) return [];
    const [expected, stored] = await Promise.all([
      this.aggregates.fromScratch(tenantId, timezone, from, to),
      this.dailyStats.listForTenant(tenantId, from, to)
    ]);
    const key = (row: DeviceDayTotal) => `${row.deviceId} ${row.date}`;
    const storedByKey = new Map(stored.map((row) => [key(row), row]));
    const differences: StatsDifference[] = [];
    for (const row of expected) {
      const found = storedByKey.get(key(row));
      storedByKey.delete(key(row));
      if (!found || !sameTotals(found, row))
        differences.push({deviceId: row.deviceId, date: row.date, stored: found ? totalsOf(found) : null, expected: totalsOf(row)});
    }
    for (const row of storedByKey.values())
      differences.push({deviceId: row.deviceId, date: row.date, stored: totalsOf(row), expected: null});
    return differences.sort((a, b) => a.date.localeCompare(b.date) || a.deviceId.localeCompare(b.deviceId));
  }
}

function sameTotals(a: DayTotal, b: DayTotal): boolean {
  return (
    a.readingCount === b.readingCount &&
    a.minTemperatureCelsius === b.minTemperatureCelsius &&
    a.maxTemperatureCelsius === b.maxTemperatureCelsius &&
    Math.abs(a.avgTemperatureCelsius - b.avgTemperatureCelsius) <= MEAN_TOLERANCE * Math.max(1, Math.abs(b.avgTemperatureCelsius))
  );
}

function totalsOf({date, readingCount, avgTemperatureCelsius, minTemperatureCelsius, maxTemperatureCelsius}: DayTotal): DayTotal {
  return {date, readingCount, avgTemperatureCelsius, minTemperatureCelsius, maxTemperatureCelsius};
}
