import {Inject, Injectable} from "@tsed/common";
import {AppConfig} from "../../config/app-config.js";
import {addMonths, monthStart} from "../../platform/db/monthly-partitions.js";
import {type Bindings, queryRows, toNativeSql} from "../../platform/db/sql.js";
import {TenantAffineConnections} from "../../platform/db/tenant-affine-connections.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import type {StoredReading} from "./reading.models.js";

export interface HistoryFilter {
  deviceId: string;
  /** Exclusive upper bound from a cursor: the exact (microsecond) recordedAt of the previous page's last row. */
  before?: string;
  from?: Date;
  to?: Date;
  minTemp?: number;
  limit: number;
}

/**
 * History of one device, newest first, by keyset: every page is a backward range scan of the
 * (device_id, recorded_at) primary key that starts where the previous page stopped, so page
 * 20,000 costs what page 1 costs (OFFSET would read and drop every row before it). The table is
 * partitioned by month of recorded_at: the scan runs partition by partition, newest first (an
 * ordered Append, no Sort), stops as soon as the page is full, and the partitions entirely after
 * the cursor (or outside from/to) are pruned when the statement is planned.
 *
 * The order is (recordedAt, id) as the API promises, and since recorded_at is unique per device
 * (the primary key, the duplicate guard of ingestion) recordedAt
 * alone is a total order within a device: the keyset condition `(recorded_at, id) < (c, id_c)`
 * reduces to `recorded_at < c`, which the index can seek to. Comparing the pair would only add a
 * filter and an incremental sort to the plan. No further index is needed.
 *
 * The cursor value is the recorded_at text at microsecond precision (Postgres' own), not a JS
 * Date (milliseconds), so rows written with sub-millisecond timestamps are never skipped or repeated.
 *
 * Pruning needs bounds on both sides. Without a lower bound every partition below the upper one is
 * planned and opened, though a full page rarely reaches past the newest month (a device reporting
 * every 30 s fills 50 rows in 25 minutes); without an upper bound the empty months created ahead are
 * too. So a page is read in at most two windows (`historyWindows`): first the month of its upper
 * bound and the month before, and only when those hold fewer rows than the page, everything below.
 * With no cursor and no `to`, the upper bound is the newest instant a reading can have: ingestion
 * refuses recordedAt more than READING_MAX_FUTURE_SKEW_S ahead of the clock.
 */
@Injectable()
export class ReadingHistoryRepository {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private config!: AppConfig;

  @Inject()
  private affine!: TenantAffineConnections;

  /** `limit` rows of the page, newest first; `cursorAt` is each row's recordedAt as a cursor value. */
  async page(filter: HistoryFilter): Promise<(StoredReading & {cursorAt: string})[]> {
    const schema = quoteTenantSchema(this.tenant.tenantId);
    const [recent, older] = historyWindows(filter, this.newestPossible());
    const rows = await queryRows<StoredReading & {cursorAt: string}>(this.tenant.em, historySql(schema, recent), historyBindings(recent));
    if (rows.length >= filter.limit || older === undefined) return rows;
    const rest = {...older, limit: filter.limit - rows.length};
    return rows.concat(await queryRows(this.tenant.em, historySql(schema, rest), historyBindings(rest)));
  }

  /**
   * The device's newest reading, and whether the device is the tenant's, in one statement
   * (latestSql; the older months in a second one only when the recent window has none): undefined
   * when the tenant has no such device, null when it has no reading. The first statement runs
   * prepared on the tenant's own read connection (TenantAffineConnections), where its plan is
   * reused however many tenants there are: dashboards poll it more than anything else.
   */
  async latest(deviceId: string): Promise<(StoredReading & {cursorAt: string}) | null | undefined> {
    const schema = quoteTenantSchema(this.tenant.tenantId);
    const [recent, older] = historyWindows({deviceId, limit: 1}, this.newestPossible());
    type LatestRow = (StoredReading & {cursorAt: string}) | {[K in keyof StoredReading]: null};
    const [sql, bindings] = [latestSql(schema, recent), historyBindings(recent)];
    const [row] =
      this.affine.readsEnabled && !this.tenant.inTransaction
        ? await this.affine.readRows<LatestRow>(this.tenant.tenantId, sql, bindings)
        : await queryRows<LatestRow>(this.tenant.em, sql, bindings);
    if (!row) return undefined;
    if (row.id !== null) return row;
    if (!older) return null;
    const [past] = await queryRows<StoredReading & {cursorAt: string}>(this.tenant.em, historySql(schema, older), historyBindings(older));
    return past ?? null;
  }

  /** Postgres' plan of the first statement `page` runs (the one every page runs). */
  async explain(filter: HistoryFilter, analyze: boolean): Promise<{query: string; plan: Record<string, unknown>[]}> {
    const em = this.tenant.em;
    const [recent] = historyWindows(filter, this.newestPossible());
    const sql = historySql(quoteTenantSchema(this.tenant.tenantId), recent);
    const bindings = historyBindings(recent);
    const options = analyze ? "analyze, buffers, format json" : "format json";
    const [row] = await queryRows<{"QUERY PLAN": Record<string, unknown>[]}>(em, `explain (${options}) ${sql}`, bindings);
    const native = toNativeSql(em.getKnex(), sql, bindings);
    return {query: em.getPlatform().formatQuery(native.sql.replace(/\$\d+/g, "?"), native.values), plan: row?.["QUERY PLAN"] ?? []};
  }

  /** No stored reading is newer than this (the write path's future-skew check; a minute's margin for clocks between instances). */
  private newestPossible(): Date {
    return new Date(Date.now() + this.config.readings.maxFutureSkewMs + 60_000);
  }
}

/**
 * The one or two filters a page is read with: the recent window (the month of the page's upper
 * bound and the month before) and, when the page reaches below it, the rest down to `from`. Each
 * is a plain range, so Postgres prunes at plan time every partition outside it.
 */
export function historyWindows(filter: HistoryFilter, newestPossible: Date): [HistoryFilter, HistoryFilter?] {
  const bounded = filter.before !== undefined || filter.to !== undefined ? filter : {...filter, to: newestPossible};
  const upper = Math.min(
    bounded.before === undefined ? Infinity : Date.parse(bounded.before),
    bounded.to === undefined ? Infinity : bounded.to.getTime()
  );
  const recentFrom = addMonths(monthStart(new Date(upper)), -1);
  if (bounded.from !== undefined && bounded.from.getTime() >= recentFrom.getTime()) return [bounded];
  // The rest: strictly below the recent window, so no row is read twice.
  return [
    {...bounded, from: recentFrom},
    {deviceId: bounded.deviceId, from: bounded.from, to: recentFrom, minTemp: bounded.minTemp, limit: bounded.limit}
  ];
}

/** The history page statement: only the filters given are part of it (each variant plans on its own). */
export function historySql(schema: string, filter: HistoryFilter): string {
  const conditions = [`r."device_id" = :deviceId`];
  if (filter.before !== undefined) conditions.push(`r."recorded_at" < :before::timestamptz`);
  if (filter.from) conditions.push(`r."recorded_at" >= :from::timestamptz`);
  if (filter.to) conditions.push(`r."recorded_at" < :to::timestamptz`);
  if (filter.minTemp !== undefined) conditions.push(`r."temperature_celsius" >= :minTemp`);
  return `select r."id", r."device_id" as "deviceId", r."temperature_celsius" as "temperatureCelsius", r."humidity",
      r."battery_level" as "batteryLevel", r."recorded_at" as "recordedAt", r."created_at" as "createdAt",
      to_char(r."recorded_at" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "cursorAt"
    from ${schema}."temperature_readings" r
    where ${conditions.join(" and ")}
    order by r."recorded_at" desc
    limit :limit`;
}

/**
 * GET latest's statement: the device row (any device of the tenant, active or not, as the device
 * check of a page) and, beside it, the first history row of `filter`'s window; a row of nulls
 * beside it when the window has none, no row at all when the device is not the tenant's. One
 * statement where the device check and the page were two: a latest reading is what dashboards
 * poll most.
 */
export function latestSql(schema: string, filter: HistoryFilter): string {
  return `select h.* from ${schema}."devices" d
    left join lateral (${historySql(schema, filter)}) h on true
    where d."id" = :deviceId`;
}

function historyBindings(filter: HistoryFilter): Bindings {
  return {deviceId: filter.deviceId, before: filter.before, from: filter.from, to: filter.to, minTemp: filter.minTemp, limit: filter.limit};
}
