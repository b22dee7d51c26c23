/**
 * The totals of a set of readings of one device on one local day of its tenant: what a write adds
 * to a DailyStats row, and what a row holds. Readings of different writes are different readings,
 * so totals of several writes combine (combineDayTotals) into the totals of all of them.
 */
export interface DayTotal {
  /** Local day in the tenant's timezone, YYYY-MM-DD. */
  date: string;
  readingCount: number;
  avgTemperatureCelsius: number;
  minTemperatureCelsius: number;
  maxTemperatureCelsius: number;
}

/** A DailyStats row's figures: one device, one local day. */
export interface DeviceDayTotal extends DayTotal {
  deviceId: string;
}

/** What one write committed: per device, the totals of the readings it inserted, one per local day. */
export interface DayTotalsByDevice {
  tenantId: string;
  byDevice: Map<string, readonly DayTotal[]>;
}

/**
 * SQL: the totals of the rows of `stored` (a relation with "recorded_at" and
 * "temperature_celsius") per local day of the tenant's timezone (UTC when the tenant is not
 * registered), as rows of DayTotal. It takes the named parameter `:tenantId`. A write splices this
 * into its own INSERT statement, so that the DailyStats refresh needs no statement of its own on
 * the readings, only the merge into analytics.
 */
export function dayTotalsSql(stored: string): string {
  return `select ((st."recorded_at" at time zone tz."name")::date)::text as "date",
           count(*)::int as "readingCount",
           avg(st."temperature_celsius") as "avgTemperatureCelsius",
           min(st."temperature_celsius") as "minTemperatureCelsius",
           max(st."temperature_celsius") as "maxTemperatureCelsius"
      from ${stored} st
     cross join (select coalesce((select t."timezone" from "public"."tenants" t where t."id" = :tenantId), 'UTC') as "name") tz
     group by 1`;
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
