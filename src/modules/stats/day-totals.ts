/**
 * The totals of a set of readings of one device on one local day of its tenant: what a write adds
 * to a DailyStats row, and what a row holds. Readings of different writes are different readings,
 * so the totals of several writes add up (merge_daily_stats does it, for the writes a recompute
 * has not counted yet).
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

/** What one write committed: its transaction id, and per device the totals of the readings it inserted, one per local day. */
export interface DayTotalsByDevice {
  tenantId: string;
  /** The writing transaction's id (pg_current_xact_id): a recompute whose snapshot sees it has counted these readings. */
  xid: string;
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
  return totalsSql(stored, false);
}

/**
 * dayTotalsSql for a write of several devices: the totals of `stored` (with "device_id" as well)
 * per device and local day, as rows of DeviceDayTotal. Also takes `:tenantId`.
 */
export function deviceDayTotalsSql(stored: string): string {
  return totalsSql(stored, true);
}

/**
 * SQL: the tenant's timezone (UTC when the tenant is not registered) as the one-row relation
 * `tz` ("name"), to `cross join`. Takes the named parameter `:tenantId`.
 */
export const TENANT_ZONE_SQL = `(select coalesce((select t."timezone" from "public"."tenants" t where t."id" = :tenantId), 'UTC') as "name") tz`;

/** SQL: the local day (a date) of the timestamptz `instant` in TENANT_ZONE_SQL's zone: the day of the DailyStats row that counts it. */
export const localDaySql = (instant: string) => `(${instant} at time zone tz."name")::date`;

function totalsSql(stored: string, byDevice: boolean): string {
  return `select ${byDevice ? `st."device_id"::text as "deviceId",\n           ` : ""}(${localDaySql(`st."recorded_at"`)})::text as "date",
           count(*)::int as "readingCount",
           avg(st."temperature_celsius") as "avgTemperatureCelsius",
           min(st."temperature_celsius") as "minTemperatureCelsius",
           max(st."temperature_celsius") as "maxTemperatureCelsius"
      from ${stored} st
     cross join ${TENANT_ZONE_SQL}
     group by ${byDevice ? "1, 2" : "1"}`;
}
