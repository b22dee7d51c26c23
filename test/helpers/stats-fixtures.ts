import {randomUUID} from "node:crypto";
import pg from "pg";
import {expect} from "vitest";
import {quoteTenantSchema} from "../../src/platform/tenancy/tenant-id.js";
import type {Api} from "./test-server.js";
import {bearer} from "./tokens.js";

/**
 * Fixtures of the history, stats, cache, admin and aggregation specs. Readings go through the real
 * routes (`postReadings`), so the write path under test is the application's. Where a case needs
 * a refresh that failed or a merge that never ran, a test-only trigger on the analytics table
 * provokes it (`withDailyStatsTrigger`); nothing here re-implements the write.
 */

export interface ReadingRow {
  recordedAt: string | Date;
  temperatureCelsius: number;
}

let pool: pg.Pool | undefined;
let analyticsPool: pg.Pool | undefined;

export function tenantDb(): pg.Pool {
  pool ??= new pg.Pool({connectionString: process.env.DATABASE_URL, max: 4});
  return pool;
}

export function analyticsDb(): pg.Pool {
  analyticsPool ??= new pg.Pool({connectionString: process.env.ANALYTICS_DATABASE_URL, max: 2});
  return analyticsPool;
}

export async function closeDbs() {
  await Promise.all([pool?.end(), analyticsPool?.end()]);
  pool = analyticsPool = undefined;
}

export async function adminAuth(tenant: string) {
  return bearer(tenant, {roles: ["user", "admin"]});
}

export {createDevice} from "./factories.js";

const iso = (at: string | Date) => (at instanceof Date ? at.toISOString() : at);

/**
 * Posts readings through `POST /devices/:id/readings/batch` (1,000 per request, the route's
 * limit), the way a device back-fills: validation, the ingest statement, alerts, and the
 * DailyStats refresh the response waits for. Every batch must be accepted.
 */
export async function postReadings(
  api: Api,
  auth: Record<string, string>,
  deviceId: string,
  rows: ReadingRow[]
): Promise<{inserted: number; duplicates: number}> {
  const total = {inserted: 0, duplicates: 0};
  for (let i = 0; i < rows.length; i += 1_000) {
    const readings = rows.slice(i, i + 1_000).map((r) => ({temperatureCelsius: r.temperatureCelsius, recordedAt: iso(r.recordedAt)}));
    const res = await api.post(`/api/v1/devices/${deviceId}/readings/batch`).set(auth).send({readings});
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    total.inserted += res.body.inserted;
    total.duplicates += res.body.duplicates;
  }
  return total;
}

/**
 * Readings stored with plain SQL, bypassing the write path: only for specs that read raw readings
 * back in bulk (history paging over thousands of rows) and never look at DailyStats.
 */
export async function insertReadings(tenant: string, deviceId: string, rows: ReadingRow[]): Promise<void> {
  await tenantDb().query(
    `insert into ${quoteTenantSchema(tenant)}."temperature_readings" ("device_id", "temperature_celsius", "recorded_at")
     select $1, x.t, x.r from unnest($2::float8[], $3::timestamptz[]) as x(t, r)`,
    [deviceId, rows.map((r) => r.temperatureCelsius), rows.map((r) => iso(r.recordedAt))]
  );
}

/** The registry row's timezone, set directly (no recompute is scheduled). The tenant must be registered. */
export async function setTimezone(tenant: string, timezone: string) {
  const result = await tenantDb().query(`update "public"."tenants" set "timezone" = $1 where "id" = $2`, [timezone, tenant]);
  expect(result.rowCount, `tenant ${tenant} is not registered (make a request as it first)`).toBe(1);
}

/**
 * While `task` runs, the analytics database treats DailyStats writes of `tenant` (of one device,
 * if given) as a test-only trigger says:
 * - `fail`: the write raises, as if analytics were refusing it — the after-commit refresh fails;
 * - `skip`: the write does nothing — the merge "never ran" for those rows (as after a crash
 *   between the commit and the refresh), which the nightly job must catch up on.
 * Other tenants' rows (other spec files write the same table) are untouched.
 */
export async function withDailyStatsTrigger<T>(
  options: {tenant: string; deviceId?: string; effect: "fail" | "skip"},
  task: () => Promise<T>
): Promise<T> {
  const {tenant, deviceId, effect} = options;
  // DDL takes no bound parameters: only values of a known shape are spliced in.
  if (!/^[a-z][a-z0-9_]{0,62}$/.test(tenant) || (deviceId !== undefined && !/^[0-9a-f-]{36}$/.test(deviceId)))
    throw new Error("unexpected tenant or device id");
  const name = `test_daily_stats_${effect}_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const when = `new."tenant_id" = '${tenant}'${deviceId ? ` and new."device_id" = '${deviceId}'` : ""}`;
  const body =
    effect === "fail" ? `begin raise exception 'test trigger: daily_stats refused for ${tenant}'; end` : `begin return null; end`;
  const db = analyticsDb();
  await db.query(`create function "${name}"() returns trigger language plpgsql as $$ ${body} $$`);
  await db.query(
    `create trigger "${name}" before insert or update on "daily_stats" for each row when (${when}) execute function "${name}"()`
  );
  try {
    return await task();
  } finally {
    await db.query(`drop trigger "${name}" on "daily_stats"`);
    await db.query(`drop function "${name}"()`);
  }
}

export interface DailyRow {
  date: string;
  readingCount: number;
  avg: number;
  min: number;
  max: number;
  updatedAt: Date;
}

export async function dailyRows(tenant: string, deviceId: string): Promise<DailyRow[]> {
  const {rows} = await analyticsDb().query(
    `select "date"::text as "date", "reading_count" as "readingCount", "avg_temperature_celsius" as "avg",
       "min_temperature_celsius" as "min", "max_temperature_celsius" as "max", "updated_at" as "updatedAt"
     from "daily_stats" where "tenant_id" = $1 and "device_id" = $2 order by "date"`,
    [tenant, deviceId]
  );
  return rows;
}

/** What the day's stats must be, computed independently of the application in JS. */
export function expectedDay(rows: ReadingRow[]) {
  const temps = rows.map((r) => r.temperatureCelsius);
  return {
    readingCount: temps.length,
    avg: temps.reduce((a, b) => a + b, 0) / temps.length,
    min: Math.min(...temps),
    max: Math.max(...temps)
  };
}

export {countStatements} from "./sql-statements.js";
