import {Migration} from "@mikro-orm/migrations";

/**
 * Local days of a tenant whose DailyStats a failed merge left behind (the analytics database was
 * unreachable after the readings committed): the repair job recomputes them, whatever the day.
 * Kept in the tenant database (`public`, platform metadata, no reading in it), which was reachable
 * a moment before: the write that failed to merge had just committed there.
 */
export class Migration20261201120000_daily_stats_dirty_days extends Migration {
  override up(): void {
    this.addSql(`create table if not exists "public"."daily_stats_dirty_days" (
      "tenant_id" varchar(63) not null,
      "date" date not null,
      "marked_at" timestamptz not null default now(),
      primary key ("tenant_id", "date")
    );`);
  }

  override down(): void {
    this.addSql(`drop table if exists "public"."daily_stats_dirty_days";`);
  }
}
