import type {EntityManager, MikroORM} from "@mikro-orm/postgresql";
import {Injectable} from "@tsed/common";
import {Orm} from "@tsed/mikro-orm";
import {ANALYTICS_CONTEXT} from "../../platform/db/orm-contexts.js";
import {type Bindings, queryRows} from "../../platform/db/sql.js";
import type {DayTotal, DeviceDayTotal} from "./day-totals.js";
import {DailyStats} from "./daily-stats.entity.js";

/**
 * The after-commit merge (merge_daily_stats, Migration20261201110000): adds each write's totals to
 * the rows, skipping the writes the row's last recompute already counted. One call per tenant of
 * :groups (`[{tenantId, totals}]`, in tenant order), all in one statement: a fleet spread over
 * many tenants costs one round trip per refresh, not one per tenant (docs/scaling.md). Every
 * merge takes its rows' locks in (tenant, device, day) order, so two such statements cannot
 * deadlock.
 */
export const mergeDailyStatsSql = `select g."tenantId", m."changed_device_id" as "deviceId"
  from jsonb_to_recordset(:groups::jsonb) as g("tenantId" text, "totals" jsonb)
  cross join lateral merge_daily_stats(g."tenantId", g."totals") m`;

/**
 * Holds a local day of a tenant for a recompute: exclusive against every other recompute and
 * merge of that day (merges take it shared), until the transaction ends.
 */
export const lockDaySql = `select pg_advisory_xact_lock(hashtextextended('daily_stats:' || :tenantId || ':' || :day, 0))`;

/**
 * The recompute: the rows become exactly the given totals, counted from the readings visible in
 * `:snapshot` (kept on the row, so that merges of writes it saw are skipped). A row that already
 * holds these values is left alone (no write, `updatedAt` kept), so running twice changes
 * nothing; its older snapshot stays right, since under the day's lock a row only holds merged
 * writes the recompute sees too, and equal counts mean none is missing. "These values" allows the
 * average a relative 1e-9: a floating-point mean depends on the order it was summed in.
 */
export const replaceDailyStatsSql = `insert into "daily_stats" as ds
    ("tenant_id", "device_id", "date", "avg_temperature_celsius", "min_temperature_celsius", "max_temperature_celsius", "reading_count", "updated_at", "recomputed_snapshot")
  select :tenantId, x."deviceId", x."date", x."avgTemperatureCelsius", x."minTemperatureCelsius", x."maxTemperatureCelsius", x."readingCount", now(), :snapshot::pg_snapshot
    from jsonb_to_recordset(:rows::jsonb) as x("deviceId" uuid, "date" date, "avgTemperatureCelsius" float8, "minTemperatureCelsius" float8, "maxTemperatureCelsius" float8, "readingCount" int)
   order by x."deviceId"
  on conflict ("tenant_id", "device_id", "date") do update set
    "reading_count" = excluded."reading_count",
    "avg_temperature_celsius" = excluded."avg_temperature_celsius",
    "min_temperature_celsius" = excluded."min_temperature_celsius",
    "max_temperature_celsius" = excluded."max_temperature_celsius",
    "updated_at" = excluded."updated_at",
    "recomputed_snapshot" = excluded."recomputed_snapshot"
  where ds."reading_count" <> excluded."reading_count"
    or ds."min_temperature_celsius" <> excluded."min_temperature_celsius"
    or ds."max_temperature_celsius" <> excluded."max_temperature_celsius"
    or abs(ds."avg_temperature_celsius" - excluded."avg_temperature_celsius") > 1e-9 * greatest(1, abs(excluded."avg_temperature_celsius"))
  returning ds."device_id" as "deviceId"`;

/** A write's totals for one device and day, as merge_daily_stats takes them. */
export type WriteDayTotal = DayTotal & {deviceId: string; xid: string};

/**
 * DailyStats in the analytics database. Always an explicit fork of the analytics ORM: the hook and
 * the jobs run without an analytics entity manager in their request context.
 */
@Injectable()
export class DailyStatsRepository {
  @Orm(ANALYTICS_CONTEXT)
  private orm!: MikroORM;

  /** mergeDailyStatsSql for each tenant's totals; returns, per tenant, the devices whose rows changed. */
  async merge(byTenant: ReadonlyMap<string, readonly WriteDayTotal[]>): Promise<Map<string, Set<string>>> {
    const groups = [...byTenant].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([tenantId, totals]) => ({tenantId, totals}));
    // Prepared: the merge runs after every ingest.
    const rows = await queryRows<{tenantId: string; deviceId: string}>(
      this.orm.em.fork(),
      mergeDailyStatsSql,
      {groups: JSON.stringify(groups)},
      {prepare: true}
    );
    const changed = new Map<string, Set<string>>();
    for (const {tenantId, deviceId} of rows) {
      const devices = changed.get(tenantId);
      if (devices) devices.add(deviceId);
      else changed.set(tenantId, new Set([deviceId]));
    }
    return changed;
  }

  /** Runs `work` in one analytics transaction holding the day's lock (lockDaySql). */
  withDayLocked<T>(tenantId: string, date: string, work: (tx: EntityManager) => Promise<T>): Promise<T> {
    return this.orm.em.fork().transactional(async (tx) => {
      await queryRows(tx, lockDaySql, {tenantId, day: date});
      return work(tx);
    });
  }

  /** replaceDailyStatsSql, inside withDayLocked; returns the devices whose rows changed. */
  async replace(tx: EntityManager, tenantId: string, rows: readonly DeviceDayTotal[], snapshot: string): Promise<string[]> {
    const filled = rows.filter((row) => row.readingCount > 0);
    if (filled.length === 0) return [];
    const changed = await queryRows<{deviceId: string}>(tx, replaceDailyStatsSql, {tenantId, rows: JSON.stringify(filled), snapshot});
    return changed.map((row) => row.deviceId);
  }

  /**
   * Inside withDayLocked: removes the day's rows of devices in (after, upTo] (open-ended when
   * undefined) that are not in `keep`: walking the devices in id order chunk by chunk, this drops
   * the rows of days that no longer have readings without holding every device id at once.
   * Returns the devices.
   */
  async sweep(
    tx: EntityManager,
    tenantId: string,
    date: string,
    range: {after?: string; upTo?: string},
    keep: string[]
  ): Promise<string[]> {
    const conditions = [`"tenant_id" = :tenantId`, `"date" = :day::date`];
    const bindings: Bindings = {tenantId, day: date, after: range.after, upTo: range.upTo, keep: JSON.stringify(keep)};
    if (range.after !== undefined) conditions.push(`"device_id" > :after::uuid`);
    if (range.upTo !== undefined) conditions.push(`"device_id" <= :upTo::uuid`);
    if (keep.length) conditions.push(`"device_id" not in (select jsonb_array_elements_text(:keep::jsonb)::uuid)`);
    const deleted = await queryRows<{deviceId: string}>(
      tx,
      `delete from "daily_stats" where ${conditions.join(" and ")} returning "device_id" as "deviceId"`,
      bindings
    );
    return deleted.map((row) => row.deviceId);
  }

  /**
   * Removes a tenant's rows outside [from, to] (days with no reading any more, after a timezone
   * change), but for the days up to `keepThrough` (past the raw retention: kept as counted); returns the devices.
   */
  async removeOutside(tenantId: string, from: string | null, to: string | null, keepThrough: string | null = null): Promise<string[]> {
    const deleted = await queryRows<{deviceId: string}>(
      this.orm.em.fork(),
      `delete from "daily_stats"
        where "tenant_id" = :tenantId and (:from::date is null or "date" < :from::date or "date" > :to::date)
          and (:keepThrough::date is null or "date" > :keepThrough::date)
        returning "device_id" as "deviceId"`,
      {tenantId, from, to, keepThrough}
    );
    return [...new Set(deleted.map((row) => row.deviceId))];
  }

  /** One device's rows from `from` to `to` (both inclusive), oldest first. */
  findRange(tenantId: string, deviceId: string, from: string, to: string): Promise<DailyStats[]> {
    return this.orm.em.fork().find(DailyStats, {tenantId, deviceId, date: {$gte: from, $lte: to}}, {orderBy: {date: "asc"}});
  }

  /** Every row of a tenant in [from, to] (both optional), for verification. */
  listForTenant(tenantId: string, from: string | null, to: string | null): Promise<DeviceDayTotal[]> {
    return queryRows(
      this.orm.em.fork(),
      `select "device_id" as "deviceId", "date"::text as "date", "reading_count" as "readingCount", "avg_temperature_celsius" as "avgTemperatureCelsius",
              "min_temperature_celsius" as "minTemperatureCelsius", "max_temperature_celsius" as "maxTemperatureCelsius"
         from "daily_stats" where "tenant_id" = :tenantId and (:from::date is null or "date" >= :from::date) and (:to::date is null or "date" <= :to::date)
        order by "device_id", "date"`,
      {tenantId, from, to}
    );
  }
}
