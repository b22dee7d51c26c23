import type {MikroORM} from "@mikro-orm/postgresql";
import {Injectable} from "@tsed/common";
import {Orm} from "@tsed/mikro-orm";
import {pgArray, queryRows} from "../../platform/db/sql.js";
import {localDaySql, TENANT_ZONE_SQL} from "./day-totals.js";

/**
 * A day marked again: the new mark (a recompute that began before it may not have seen its
 * readings), repaired no earlier than either mark allows.
 */
const ON_MARKED_AGAIN = `on conflict ("tenant_id", "date") do update
   set "marked_at" = now(), "repair_after" = greatest("daily_stats_dirty_days"."repair_after", excluded."repair_after")`;

/**
 * Local days whose DailyStats a failed merge, or a write whose outcome is unknown, left behind
 * (`public.daily_stats_dirty_days`, tenant database), until the repair job has recomputed them.
 */
@Injectable()
export class DirtyDaysRepository {
  @Orm()
  private orm!: MikroORM;

  /** Marks days a failed merge left behind: the repair may recompute them at once (unless a mark already waits for later). */
  async mark(tenantId: string, dates: readonly string[]): Promise<void> {
    await queryRows(
      this.orm.em.fork(),
      `insert into "public"."daily_stats_dirty_days" ("tenant_id", "date", "marked_at", "repair_after")
       select :tenantId, d::date, now(), now() from unnest(:dates::text[]) d
       ${ON_MARKED_AGAIN}`,
      {tenantId, dates}
    );
  }

  /**
   * Marks the tenant's local days (in its timezone) of these instants: the days of readings a
   * write may or may not have stored (DailyStatsRefreshService.outcomeUnknown), each named as the
   * write's own day totals would have named it (day-totals.ts).
   * @param settleMs how long the write may still commit: the repair waits that long, or its
   *   recompute could run before the write's readings are there
   */
  async markLocalDaysOf(tenantId: string, instants: readonly Date[], settleMs: number): Promise<void> {
    await queryRows(
      this.orm.em.fork(),
      `insert into "public"."daily_stats_dirty_days" ("tenant_id", "date", "marked_at", "repair_after")
       select distinct :tenantId, ${localDaySql(`(timestamptz 'epoch' + ms * interval '1 millisecond')`)}, now(), now() + :settleMs * interval '1 millisecond'
         from unnest(:instants::float8[]) ms
        cross join ${TENANT_ZONE_SQL}
       ${ON_MARKED_AGAIN}`,
      {tenantId, instants: pgArray(instants.map((instant) => instant.getTime())), settleMs: Math.ceil(settleMs)}
    );
  }

  /** The oldest marks the repair may take now, at most `limit`. `markedAt` is Postgres' text (microseconds: a Date would round it). */
  list(limit: number): Promise<{tenantId: string; date: string; markedAt: string}[]> {
    return queryRows(
      this.orm.em.fork(),
      `select "tenant_id" as "tenantId", "date"::text as "date", "marked_at"::text as "markedAt" from "public"."daily_stats_dirty_days"
        where "repair_after" <= now() order by "marked_at" limit :limit`,
      {limit}
    );
  }

  /** Clears a mark, unless the day was marked again after `markedAt` (a newer failure the recompute may not have seen). */
  async clear(tenantId: string, date: string, markedAt: string): Promise<void> {
    await queryRows(
      this.orm.em.fork(),
      `delete from "public"."daily_stats_dirty_days" where "tenant_id" = :tenantId and "date" = :day::date and "marked_at" <= :markedAt::timestamptz`,
      {
        tenantId,
        day: date,
        markedAt
      }
    );
  }
}
