import {setTimeout as sleep} from "node:timers/promises";
import type {MikroORM} from "@mikro-orm/postgresql";
import {Injectable} from "@tsed/common";
import {Orm} from "@tsed/mikro-orm";
import type {Backend} from "../../platform/db/lost-connection.js";
import {pgArray, queryRows} from "../../platform/db/sql.js";
import {localDaySql, TENANT_ZONE_SQL} from "./day-totals.js";

/** A day marked again: the new mark (a recompute that began before it may not have seen its readings), with every lost backend of both. */
const ON_MARKED_AGAIN = `on conflict ("tenant_id", "date") do update
   set "marked_at" = now(), "lost_backends" = "daily_stats_dirty_days"."lost_backends" || excluded."lost_backends"`;

/** How long the repair waits for a lost backend it ended to be gone; past it, the day waits for the next run. */
const BACKEND_END_WAIT_MS = 5_000;

/**
 * Local days whose DailyStats a failed merge, or a write whose outcome is unknown, left behind
 * (`public.daily_stats_dirty_days`, tenant database), until the repair job has recomputed them.
 */
@Injectable()
export class DirtyDaysRepository {
  @Orm()
  private orm!: MikroORM;

  /** Marks days a failed merge left behind. */
  async mark(tenantId: string, dates: readonly string[]): Promise<void> {
    await queryRows(
      this.orm.em.fork(),
      `insert into "public"."daily_stats_dirty_days" ("tenant_id", "date", "marked_at")
       select :tenantId, d::date, now() from unnest(:dates::text[]) d
       ${ON_MARKED_AGAIN}`,
      {tenantId, dates}
    );
  }

  /**
   * Marks the tenant's local days (in its timezone) of these instants: the days of readings a
   * write may or may not have stored (DailyStatsRefreshService.outcomeUnknown), each named as the
   * write's own day totals would have named it (day-totals.ts).
   * @param lostBackend the backend that served the write, when known: the repair ends it first
   */
  async markLocalDaysOf(tenantId: string, instants: readonly Date[], lostBackend: Backend | undefined): Promise<void> {
    await queryRows(
      this.orm.em.fork(),
      `insert into "public"."daily_stats_dirty_days" ("tenant_id", "date", "marked_at", "lost_backends")
       select distinct :tenantId, ${localDaySql(`(timestamptz 'epoch' + ms * interval '1 millisecond')`)}, now(), :lostBackends::jsonb
         from unnest(:instants::float8[]) ms
        cross join ${TENANT_ZONE_SQL}
       ${ON_MARKED_AGAIN}`,
      {
        tenantId,
        instants: pgArray(instants.map((instant) => instant.getTime())),
        lostBackends: JSON.stringify(lostBackend ? [lostBackend] : [])
      }
    );
  }

  /** The oldest marks first, at most `limit`. `markedAt` is Postgres' text (microseconds: a Date would round it). */
  list(limit: number): Promise<{tenantId: string; date: string; markedAt: string; lostBackends: Backend[]}[]> {
    return queryRows(
      this.orm.em.fork(),
      `select "tenant_id" as "tenantId", "date"::text as "date", "marked_at"::text as "markedAt", "lost_backends" as "lostBackends"
         from "public"."daily_stats_dirty_days" order by "marked_at" limit :limit`,
      {limit}
    );
  }

  /**
   * Ends those of these backends still running (the same process id and start) and waits, up to
   * BACKEND_END_WAIT_MS, for them to be gone: once one is, whatever it received has committed or
   * never will. Returns those still running.
   */
  async endBackends(backends: readonly Backend[]): Promise<Backend[]> {
    if (backends.length === 0) return [];
    const em = this.orm.em.fork();
    const matching = `from pg_stat_activity a
      join (select distinct b."pid", b."startedAt" from jsonb_to_recordset(:backends::jsonb) b("pid" int, "startedAt" timestamptz)) b
        on a."pid" = b."pid" and a."backend_start" = b."startedAt"`;
    const bindings = {backends: JSON.stringify(backends)};
    // Without pg_terminate_backend's own wait: that would count against the statement timeout.
    await queryRows(em, `select pg_terminate_backend(a."pid") ${matching}`, bindings);
    const deadline = Date.now() + BACKEND_END_WAIT_MS;
    for (;;) {
      const running = new Set((await queryRows<{pid: number}>(em, `select a."pid" ${matching}`, bindings)).map((row) => row.pid));
      if (running.size === 0 || Date.now() >= deadline) return backends.filter((backend) => running.has(backend.pid));
      await sleep(100);
    }
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
