import type {MikroORM} from "@mikro-orm/postgresql";
import {DIContext, Inject, Injectable, runInContext} from "@tsed/di";
import {Orm, Transactional} from "@tsed/mikro-orm";
import {PlatformTest} from "@tsed/platform-http/testing";
import pg from "pg";
import {type DayTotal, dayTotalsSql} from "../../src/modules/stats/day-totals.js";
import {DailyStatsRefresh} from "../../src/modules/stats/daily-stats-refresh.service.js";
import {queryRows} from "../../src/platform/db/sql.js";
import {quoteTenantSchema} from "../../src/platform/tenancy/tenant-id.js";
import {bearer} from "./tokens.js";

/**
 * Fixtures of the history/stats/aggregation specs. Until ingestion lands, readings are inserted
 * with plain SQL (bound parameters) into the tenant's schema, and the after-commit refresh is
 * exercised through `ReadingsWriterForTests`, a @Transactional write that records what it inserted
 * exactly as the ingestion service does.
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

/** Inserts readings directly (no hook): the nightly job and the history endpoints read them. */
export async function insertReadings(tenant: string, deviceId: string, rows: ReadingRow[]): Promise<void> {
  await tenantDb().query(
    `insert into ${quoteTenantSchema(tenant)}."temperature_readings" ("device_id", "temperature_celsius", "recorded_at")
     select $1, x.t, x.r from unnest($2::float8[], $3::timestamptz[]) as x(t, r)`,
    [deviceId, rows.map((r) => r.temperatureCelsius), rows.map((r) => (r.recordedAt instanceof Date ? r.recordedAt.toISOString() : r.recordedAt))]
  );
}

export async function setTimezone(tenant: string, timezone: string) {
  await tenantDb().query(`update "public"."tenants" set "timezone" = $1 where "id" = $2`, [timezone, tenant]);
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
  return {readingCount: temps.length, avg: temps.reduce((a, b) => a + b, 0) / temps.length, min: Math.min(...temps), max: Math.max(...temps)};
}

/**
 * A @Transactional write of readings that records their day totals for the after-commit hook,
 * as the ingestion service does (with the same totals query). Test-only: registered when a spec
 * imports this file.
 */
@Injectable()
export class ReadingsWriterForTests {
  @Orm()
  private orm!: MikroORM;

  @Inject()
  private dailyStats!: DailyStatsRefresh;

  @Transactional()
  async write(tenant: string, deviceId: string, rows: ReadingRow[], alterRecorded: (days: DayTotal[]) => DayTotal[] = (days) => days): Promise<void> {
    const em = this.orm.em.getContext();
    const [{days, xid}] = await queryRows<{days: DayTotal[]; xid: string}>(
      em,
      `with "stored" as (
         insert into ${quoteTenantSchema(tenant)}."temperature_readings" ("device_id", "temperature_celsius", "recorded_at")
         select :deviceId::uuid, (x->>'t')::float8, (x->>'r')::timestamptz from jsonb_array_elements(:rows::jsonb) as x
         on conflict do nothing
         returning "recorded_at", "temperature_celsius"
       )
       select coalesce((select json_agg(dt) from (${dayTotalsSql(`"stored"`)}) dt), '[]'::json) as "days", pg_current_xact_id()::text as "xid"`,
      {deviceId, tenantId: tenant, rows: JSON.stringify(rows.map((r) => ({t: r.temperatureCelsius, r: r.recordedAt instanceof Date ? r.recordedAt.toISOString() : r.recordedAt})))}
    ) as [{days: DayTotal[]; xid: string}];
    this.dailyStats.afterCommit(tenant, xid, deviceId, alterRecorded(days));
  }
}

/** Runs the writer the way a request does: inside a DI context of its own. */
export function writeThroughHook(tenant: string, deviceId: string, rows: ReadingRow[], alterRecorded?: (days: DayTotal[]) => DayTotal[]) {
  const writer = PlatformTest.get<ReadingsWriterForTests>(ReadingsWriterForTests);
  return runInContext(new DIContext({id: `test-${Date.now()}`}), () => writer.write(tenant, deviceId, rows, alterRecorded));
}

export {countStatements} from "./sql-statements.js";
