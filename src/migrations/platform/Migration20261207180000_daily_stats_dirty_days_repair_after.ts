import {Migration} from "@mikro-orm/migrations";

/**
 * When the repair job may recompute a marked day: at once for a failed merge, but for a write
 * whose outcome is unknown only once nothing of it can still commit (a connection given up for
 * want of an answer may have statements still running in Postgres). `now()` is stable, so the
 * existing marks get the time of the migration and the table is not rewritten.
 */
export class Migration20261207180000_daily_stats_dirty_days_repair_after extends Migration {
  override up(): void {
    this.addSql(
      `alter table "public"."daily_stats_dirty_days" add column if not exists "repair_after" timestamptz not null default now();`
    );
  }

  override down(): void {
    this.addSql(`alter table "public"."daily_stats_dirty_days" drop column if exists "repair_after";`);
  }
}
