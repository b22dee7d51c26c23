import {Migration} from "@mikro-orm/migrations";

/**
 * The backends whose connections were lost under a write of the day (`[{pid, startedAt}]`): one
 * may not know yet, and may still commit what it received. The repair job ends them before it
 * recomputes the day. A constant default: the table is not rewritten.
 */
export class Migration20261207180000_daily_stats_dirty_days_lost_backends extends Migration {
  override up(): void {
    this.addSql(`alter table "public"."daily_stats_dirty_days" add column if not exists "lost_backends" jsonb not null default '[]';`);
  }

  override down(): void {
    this.addSql(`alter table "public"."daily_stats_dirty_days" drop column if exists "lost_backends";`);
  }
}
