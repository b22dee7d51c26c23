import type {MikroORM} from "@mikro-orm/postgresql";
import {Injectable} from "@tsed/di";
import {Orm} from "@tsed/mikro-orm";
import {ANALYTICS_CONTEXT} from "../../platform/db/orm-contexts.js";
import {type Bindings, queryRows} from "../../platform/db/sql.js";
import type {DeviceDayTotal} from "./day-totals.js";
import {DailyStats} from "./daily-stats.entity.js";

/** One INSERT … ON CONFLICT DO UPDATE of every row of `:rows` (JSON, DeviceDayTotal), returning the devices written. */
const upsertDailyStatsSql = (assignments: string, condition: string) => `insert into "daily_stats" as ds
    ("tenant_id", "device_id", "date", "avg_temperature_celsius", "min_temperature_celsius", "max_temperature_celsius", "reading_count", "updated_at")
  select :tenantId, x."deviceId", x."date", x."avgTemperatureCelsius", x."minTemperatureCelsius", x."maxTemperatureCelsius", x."readingCount", now()
    from jsonb_to_recordset(:rows::jsonb) as x("deviceId" uuid, "date" date, "avgTemperatureCelsius" float8, "minTemperatureCelsius" float8, "maxTemperatureCelsius" float8, "readingCount" int)
  on conflict ("tenant_id", "device_id", "date") do update set ${assignments}
  ${condition}
  returning ds."device_id" as "deviceId"`;

/**
 * The after-commit merge: what a write inserted is added to the row (count, min, max and the
 * count-weighted average); one statement, atomic per row under concurrent writers (the ON
 * CONFLICT row lock serialises them).
 */
export const mergeDailyStatsSql = upsertDailyStatsSql(
  `"reading_count" = ds."reading_count" + excluded."reading_count",
    "avg_temperature_celsius" = (ds."avg_temperature_celsius" * ds."reading_count" + excluded."avg_temperature_celsius" * excluded."reading_count")
      / (ds."reading_count" + excluded."reading_count"),
    "min_temperature_celsius" = least(ds."min_temperature_celsius", excluded."min_temperature_celsius"),
    "max_temperature_celsius" = greatest(ds."max_temperature_celsius", excluded."max_temperature_celsius"),
    "updated_at" = excluded."updated_at"`,
  ""
);

/**
 * The recompute: the rows become exactly the given ones. A row that already holds these values is
 * left alone (no write, `updatedAt` kept), so running twice changes nothing. "These values" allows
 * the average a relative 1e-9: a floating-point mean depends on the order it was summed in
 * (incremental merges, another plan), and such noise must not count as a change.
 */
export const replaceDailyStatsSql = upsertDailyStatsSql(
  `"reading_count" = excluded."reading_count",
    "avg_temperature_celsius" = excluded."avg_temperature_celsius",
    "min_temperature_celsius" = excluded."min_temperature_celsius",
    "max_temperature_celsius" = excluded."max_temperature_celsius",
    "updated_at" = excluded."updated_at"`,
  `where ds."reading_count" <> excluded."reading_count"
    or ds."min_temperature_celsius" <> excluded."min_temperature_celsius"
    or ds."max_temperature_celsius" <> excluded."max_temperature_celsius"
    or abs(ds."avg_temperature_celsius" - excluded."avg_temperature_celsius") > 1e-9 * greatest(1, abs(excluded."avg_temperature_celsius"))`
);

/**
 * DailyStats in the analytics database. Always an explicit fork of the analytics ORM: the hook and
 * the jobs run without an analytics entity manager in their request context.
 */
@Injectable()
export class DailyStatsRepository {
  @Orm(ANALYTICS_CONTEXT)
  private orm!: MikroORM;

  /**
   * The after-commit refresh: adds what a write inserted to the existing rows, or creates them
   * (mergeDailyStatsSql). Returns the devices whose rows changed.
   */
  merge(tenantId: string, deltas: DeviceDayTotal[]): Promise<string[]> {
    return this.write(mergeDailyStatsSql, tenantId, deltas);
  }

  /** The recompute: the rows become exactly `rows` (replaceDailyStatsSql). Returns the devices whose rows changed. */
  replace(tenantId: string, rows: DeviceDayTotal[]): Promise<string[]> {
    return this.write(replaceDailyStatsSql, tenantId, rows);
  }

  private async write(sql: string, tenantId: string, rows: DeviceDayTotal[]): Promise<string[]> {
    const filled = rows.filter((row) => row.readingCount > 0);
    if (filled.length === 0) return [];
    // A stable lock order: two concurrent writes of overlapping rows cannot deadlock.
    const key = (row: DeviceDayTotal) => `${row.deviceId} ${row.date}`;
    filled.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    // Prepared: the merge runs after every ingest.
    const changed = await queryRows<{deviceId: string}>(this.orm.em.fork(), sql, {tenantId, rows: JSON.stringify(filled)}, {prepare: true});
    return [...new Set(changed.map((row) => row.deviceId))];
  }

  /**
   * Removes the day's rows of devices in (after, upTo] (open-ended when undefined) that are not
   * in `keep`: walking the devices in id order chunk by chunk, this drops the rows of days that
   * no longer have readings without holding every device id at once. Returns the devices.
   */
  async sweep(tenantId: string, date: string, range: {after?: string; upTo?: string}, keep: string[]): Promise<string[]> {
    const conditions = [`"tenant_id" = :tenantId`, `"date" = :day::date`];
    const bindings: Bindings = {tenantId, day: date, after: range.after, upTo: range.upTo, keep: JSON.stringify(keep)};
    if (range.after !== undefined) conditions.push(`"device_id" > :after::uuid`);
    if (range.upTo !== undefined) conditions.push(`"device_id" <= :upTo::uuid`);
    if (keep.length) conditions.push(`"device_id" not in (select jsonb_array_elements_text(:keep::jsonb)::uuid)`);
    const deleted = await queryRows<{deviceId: string}>(this.orm.em.fork(), `delete from "daily_stats" where ${conditions.join(" and ")} returning "device_id" as "deviceId"`, bindings);
    return deleted.map((row) => row.deviceId);
  }

  /** One device's rows from `from` to `to` (both inclusive), oldest first. */
  findRange(tenantId: string, deviceId: string, from: string, to: string): Promise<DailyStats[]> {
    return this.orm.em.fork().find(DailyStats, {tenantId, deviceId, date: {$gte: from, $lte: to}}, {orderBy: {date: "asc"}});
  }
}
