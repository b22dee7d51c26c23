import {Migration} from "@mikro-orm/migrations";

/**
 * Makes the after-commit merge and the recompute of a day exact whatever their interleaving.
 *
 * - `recomputed_snapshot`: the tenant database's snapshot (pg_current_snapshot) a recompute read
 *   the row's readings with. A write whose transaction is visible in it was counted by the
 *   recompute: its merge must not add it again.
 * - `merge_daily_stats(tenant, totals)`: the merge, one call per refresh. `totals` holds, per
 *   write (its transaction id `xid`), device and local day, the totals of what it inserted. Under
 *   a shared advisory lock per (tenant, day) — a recompute of that day holds it exclusively from
 *   before it reads the readings until it commits — it drops the writes the row's recompute
 *   already counted and adds the others (count, min, max, count-weighted mean). PL/pgSQL because
 *   the row must be read after the lock is granted: a plain statement would read it as of its
 *   start, before waiting.
 */
export class Migration20261201110000_daily_stats_exact_merge extends Migration {
  override up(): void {
    this.addSql(`alter table "daily_stats" add column "recomputed_snapshot" pg_snapshot null;`);
    this.addSql(`create or replace function "merge_daily_stats"(p_tenant text, p_totals jsonb) returns table ("changed_device_id" uuid)
      language plpgsql volatile as $$
      #variable_conflict use_column
      begin
        perform pg_advisory_xact_lock_shared(hashtextextended('daily_stats:' || p_tenant || ':' || d."date", 0))
           from (select distinct x->>'date' as "date" from jsonb_array_elements(p_totals) x order by 1) d;
        return query
        with "totals" as (
          select x.* from jsonb_to_recordset(p_totals) as x("deviceId" uuid, "date" date, "xid" xid8, "readingCount" int,
                          "avgTemperatureCelsius" float8, "minTemperatureCelsius" float8, "maxTemperatureCelsius" float8)
        ), "uncounted" as (
          select t.* from "totals" t
            left join "daily_stats" ds on ds."tenant_id" = p_tenant and ds."device_id" = t."deviceId" and ds."date" = t."date"
           where ds."recomputed_snapshot" is null or not pg_visible_in_snapshot(t."xid", ds."recomputed_snapshot")
        ), "added" as (
          select u."deviceId", u."date", sum(u."readingCount")::int as "readingCount",
                 sum(u."avgTemperatureCelsius" * u."readingCount") / sum(u."readingCount") as "avgTemperatureCelsius",
                 min(u."minTemperatureCelsius") as "minTemperatureCelsius", max(u."maxTemperatureCelsius") as "maxTemperatureCelsius"
            from "uncounted" u group by u."deviceId", u."date"
        )
        insert into "daily_stats" as ds ("tenant_id", "device_id", "date", "avg_temperature_celsius", "min_temperature_celsius", "max_temperature_celsius", "reading_count", "updated_at")
        select p_tenant, a."deviceId", a."date", a."avgTemperatureCelsius", a."minTemperatureCelsius", a."maxTemperatureCelsius", a."readingCount", now()
          from "added" a
         order by a."deviceId", a."date"
        on conflict ("tenant_id", "device_id", "date") do update set
          "reading_count" = ds."reading_count" + excluded."reading_count",
          "avg_temperature_celsius" = (ds."avg_temperature_celsius" * ds."reading_count" + excluded."avg_temperature_celsius" * excluded."reading_count")
            / (ds."reading_count" + excluded."reading_count"),
          "min_temperature_celsius" = least(ds."min_temperature_celsius", excluded."min_temperature_celsius"),
          "max_temperature_celsius" = greatest(ds."max_temperature_celsius", excluded."max_temperature_celsius"),
          "updated_at" = excluded."updated_at"
        returning ds."device_id";
      end $$;`);
  }

  override down(): void {
    this.addSql(`drop function if exists "merge_daily_stats"(text, jsonb);`);
    this.addSql(`alter table "daily_stats" drop column if exists "recomputed_snapshot";`);
  }
}
