import {context} from "@tsed/di";

/**
 * What a write stored, for the DailyStats refresh once it is committed: per device, the totals of
 * the readings it inserted on each local day of the tenant. The ingest statement computes them
 * itself (ReadingRepository.ingest), so the refresh needs no statement of its own on the readings,
 * only the merge into analytics. Kept in the request's (or job's) DI context, so nothing leaks
 * between requests; the stats hook (AfterTransactionCommit) takes them once the transaction has
 * committed. A transaction writes a device's readings once: what it records for a device replaces
 * what was recorded before, so a retried transaction leaves only what its last, committed attempt
 * inserted (not also the readings of a rolled-back attempt, which a concurrent writer may have
 * stored since).
 */
export interface DayTotal {
  /** Local day in the tenant's timezone, YYYY-MM-DD. */
  date: string;
  readingCount: number;
  avgTemperatureCelsius: number;
  minTemperatureCelsius: number;
  maxTemperatureCelsius: number;
}

export interface ReadingsWritten {
  tenantId: string;
  /** deviceId → the totals of what was inserted for it, one per local day */
  byDevice: Map<string, readonly DayTotal[]>;
}

const KEY = "smart-thermo:readingsWritten";

export function recordReadingsWritten(tenantId: string, deviceId: string, days: readonly DayTotal[]): void {
  const $ctx = context();
  if (!$ctx) return;
  let written = $ctx.get(KEY) as ReadingsWritten | undefined;
  if (!written || written.tenantId !== tenantId) {
    written = {tenantId, byDevice: new Map()};
    $ctx.set(KEY, written);
  }
  written.byDevice.set(deviceId, days);
}

/** Returns and clears what was recorded in this context (undefined when nothing was). */
export function takeReadingsWritten(): ReadingsWritten | undefined {
  const $ctx = context();
  const written = $ctx?.get(KEY) as ReadingsWritten | undefined;
  if (written) $ctx!.delete(KEY);
  return written;
}

/**
 * The totals of two sets of different readings of one device, one entry per day: counts add up,
 * the mean is weighted by the counts, extremes are the extremes of both.
 */
export function combineDayTotals(a: readonly DayTotal[], b: readonly DayTotal[]): DayTotal[] {
  const byDate = new Map<string, DayTotal>(a.map((day) => [day.date, day]));
  for (const day of b) {
    const other = byDate.get(day.date);
    if (!other) {
      byDate.set(day.date, day);
      continue;
    }
    const readingCount = other.readingCount + day.readingCount;
    byDate.set(day.date, {
      date: day.date,
      readingCount,
      avgTemperatureCelsius: (other.avgTemperatureCelsius * other.readingCount + day.avgTemperatureCelsius * day.readingCount) / readingCount,
      minTemperatureCelsius: Math.min(other.minTemperatureCelsius, day.minTemperatureCelsius),
      maxTemperatureCelsius: Math.max(other.maxTemperatureCelsius, day.maxTemperatureCelsius)
    });
  }
  return [...byDate.values()];
}
