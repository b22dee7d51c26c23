import {Inject, Injectable} from "@tsed/di";
import {queryRows} from "../../platform/db/sql.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import type {TemperatureReading} from "./reading.entity.js";

export interface HistoryFilter {
  deviceId: string;
  /** Exclusive upper bound from a cursor: the exact (microsecond) recordedAt of the previous page's last row. */
  before?: string;
  from?: Date;
  to?: Date;
  minTemp?: number;
  limit: number;
}

export type HistoryRow = TemperatureReading & {cursorAt: string};

/**
 * History of one device, newest first, by keyset: every page is a backward range scan of the
 * unique (device_id, recorded_at) index that starts where the previous page stopped, so page
 * 20,000 costs what page 1 costs (OFFSET would read and drop every row before it).
 *
 * The order is (recordedAt, id) as the API promises, and since recorded_at is unique per device
 * (temperature_readings_device_recorded_at_unique, the duplicate guard of ingestion) recordedAt
 * alone is a total order within a device: the keyset condition `(recorded_at, id) < (c, id_c)`
 * reduces to `recorded_at < c`, which the index can seek to. Comparing the pair would only add a
 * filter and an incremental sort to the plan. No further index is needed.
 *
 * The cursor value is the recorded_at text at microsecond precision (Postgres' own), not a JS
 * Date (milliseconds), so rows written with sub-millisecond timestamps are never skipped or repeated.
 */
@Injectable()
export class ReadingHistoryRepository {
  @Inject()
  private tenant!: TenantContext;

  /** `limit` rows of the page, in one statement. */
  page(filter: HistoryFilter): Promise<HistoryRow[]> {
    const {sql, params} = this.historyQuery(filter);
    return queryRows<HistoryRow>(this.tenant.em, sql, params);
  }

  /** Postgres' plan of exactly the statement `page` runs. */
  async explain(filter: HistoryFilter, analyze: boolean): Promise<{query: string; plan: Record<string, unknown>[]}> {
    const {sql, params} = this.historyQuery(filter);
    const em = this.tenant.em;
    const options = analyze ? "analyze, buffers, format json" : "format json";
    const [row] = await queryRows<{"QUERY PLAN": Record<string, unknown>[]}>(em, `explain (${options}) ${sql}`, params);
    return {query: em.getPlatform().formatQuery(sql, params), plan: row?.["QUERY PLAN"] ?? []};
  }

  private historyQuery(filter: HistoryFilter): {sql: string; params: unknown[]} {
    const schema = quoteTenantSchema(this.tenant.tenantId);
    const conditions = [`r."device_id" = ?`];
    const params: unknown[] = [filter.deviceId];
    if (filter.before !== undefined) {
      conditions.push(`r."recorded_at" < ?::timestamptz`);
      params.push(filter.before);
    }
    if (filter.from) {
      conditions.push(`r."recorded_at" >= ?::timestamptz`);
      params.push(filter.from.toISOString());
    }
    if (filter.to) {
      conditions.push(`r."recorded_at" < ?::timestamptz`);
      params.push(filter.to.toISOString());
    }
    if (filter.minTemp !== undefined) {
      conditions.push(`r."temperature_celsius" >= ?`);
      params.push(filter.minTemp);
    }
    params.push(filter.limit);
    const sql = `select r."id", r."device_id" as "deviceId", r."temperature_celsius" as "temperatureCelsius", r."humidity",
        r."battery_level" as "batteryLevel", r."recorded_at" as "recordedAt", r."created_at" as "createdAt",
        to_char(r."recorded_at" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "cursorAt"
      from ${schema}."temperature_readings" r
      where ${conditions.join(" and ")}
      order by r."recorded_at" desc
      limit ?`;
    return {sql, params};
  }
}
