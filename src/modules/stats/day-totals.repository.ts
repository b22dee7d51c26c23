import {IsolationLevel} from "@mikro-orm/core";
import type {MikroORM} from "@mikro-orm/postgresql";
import {Inject, Injectable} from "@tsed/common";
import {Orm} from "@tsed/mikro-orm";
import {queryRows} from "../../platform/db/sql.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import type {DeviceDayTotal} from "./day-totals.js";

export interface HourAggregate {
  start: Date;
  readingCount: number;
  avgTemperatureCelsius: number;
  minTemperatureCelsius: number;
  maxTemperatureCelsius: number;
}

/**
 * The totals of one local day (`:day`, in `:timezone`) of every device of a tenant. The bounds are
 * constants of the statement (the timezone is a parameter, not a subquery), so the planner
 * estimates the day's rows and can choose the BRIN range or a parallel scan.
 */
export const tenantDaySql = (schema: string) => `select r."device_id" as "deviceId", :day::date::text as "date",
    count(*)::int as "readingCount",
    avg(r."temperature_celsius") as "avgTemperatureCelsius",
    min(r."temperature_celsius") as "minTemperatureCelsius",
    max(r."temperature_celsius") as "maxTemperatureCelsius"
  from ${schema}."temperature_readings" r
  where r."recorded_at" >= (:day::date::timestamp at time zone :timezone)
    and r."recorded_at" < ((:day::date + 1)::timestamp at time zone :timezone)
  group by r."device_id"
  order by r."device_id"`;

/** Hourly buckets of `:deviceId` over the last `:hours` local hours of `:timezone`, the current one included. */
export const hourlySql = (schema: string) => `select date_trunc('hour', r."recorded_at", :timezone) as "start",
    count(*)::int as "readingCount",
    avg(r."temperature_celsius") as "avgTemperatureCelsius",
    min(r."temperature_celsius") as "minTemperatureCelsius",
    max(r."temperature_celsius") as "maxTemperatureCelsius"
  from ${schema}."temperature_readings" r
  where r."device_id" = :deviceId
    and r."recorded_at" >= date_trunc('hour', now(), :timezone) - (:hours - 1) * interval '1 hour'
    and r."recorded_at" < date_trunc('hour', now(), :timezone) + interval '1 hour'
  group by 1
  order by 1`;

/** The nightly GROUP BY of a large tenant may outlast the API's statement timeout. */
const NIGHTLY_STATEMENT_TIMEOUT_MS = 15 * 60_000;

/**
 * Set-based reads of raw readings for statistics. The hook and the nightly job have no
 * tenant-bound request context: they pass the tenant explicitly and use a fork of the default ORM
 * with the validated, quoted schema. Request-path queries go through the request's TenantContext.
 */
@Injectable()
export class DayTotalsRepository {
  @Orm()
  private orm!: MikroORM;

  @Inject()
  private tenant!: TenantContext;

  /**
   * One local day of every device of the tenant, in one GROUP BY (one row per device that has
   * readings that day, ordered by device id). The day's rows are found through the BRIN index on
   * recorded_at (or a sequential scan when the day is most of the table), never one index probe
   * per device; Node receives one row per device, however many readings there are. A large
   * tenant's day may take longer than the API's statement timeout: this statement gets its own.
   */
  async forDay(tenantId: string, date: string, timezone: string): Promise<{snapshot: string; rows: DeviceDayTotal[]}> {
    // REPEATABLE READ: the snapshot reported is the one the totals were counted in.
    return this.orm.em.fork().transactional(
      async (em) => {
        await em.execute(`set local statement_timeout = ${NIGHTLY_STATEMENT_TIMEOUT_MS}`);
        const [{snapshot}] = (await queryRows<{snapshot: string}>(em, `select pg_current_snapshot()::text as "snapshot"`, {})) as [
          {snapshot: string}
        ];
        return {snapshot, rows: await queryRows<DeviceDayTotal>(em, tenantDaySql(quoteTenantSchema(tenantId)), {day: date, timezone})};
      },
      {isolationLevel: IsolationLevel.REPEATABLE_READ}
    );
  }

  /** The first and last local day (in `timezone`) with a reading of the tenant, or nulls when it has none. */
  async dayRange(tenantId: string, timezone: string): Promise<{from: string | null; to: string | null}> {
    const schema = quoteTenantSchema(tenantId);
    const [range] = (await queryRows<{from: string | null; to: string | null}>(
      this.orm.em.fork(),
      `select ((select min(r."recorded_at") from ${schema}."temperature_readings" r) at time zone :timezone)::date::text as "from",
              ((select max(r."recorded_at") from ${schema}."temperature_readings" r) at time zone :timezone)::date::text as "to"`,
      {timezone}
    )) as [{from: string | null; to: string | null}];
    return range;
  }

  /**
   * Every (device, local day) of a tenant counted from scratch in one GROUP BY, in [from, to]
   * (both optional): what DailyStats must hold. For verification, not for the request path.
   */
  fromScratch(tenantId: string, timezone: string, from: string | null, to: string | null): Promise<DeviceDayTotal[]> {
    const schema = quoteTenantSchema(tenantId);
    return this.orm.em.fork().transactional(async (em) => {
      await em.execute(`set local statement_timeout = ${NIGHTLY_STATEMENT_TIMEOUT_MS}`);
      return queryRows<DeviceDayTotal>(
        em,
        `select r."device_id" as "deviceId", (r."recorded_at" at time zone :timezone)::date::text as "date", count(*)::int as "readingCount",
                avg(r."temperature_celsius") as "avgTemperatureCelsius", min(r."temperature_celsius") as "minTemperatureCelsius", max(r."temperature_celsius") as "maxTemperatureCelsius"
           from ${schema}."temperature_readings" r
          where (:from::date is null or r."recorded_at" >= (:from::date::timestamp at time zone :timezone))
            and (:to::date is null or r."recorded_at" < ((:to::date + 1)::timestamp at time zone :timezone))
          group by 1, 2
          order by 1, 2`,
        {timezone, from, to}
      );
    });
  }

  /**
   * Hourly buckets of one device of the request's tenant over the last `hours` local hours (the
   * current one included), in one GROUP BY. `date_trunc(.., zone)` cuts at local hour boundaries
   * (e.g. :30 UTC for Asia/Kolkata) and keeps the two 01:00 hours of a fall-back night apart.
   */
  hourly(deviceId: string, hours: number, timezone: string): Promise<HourAggregate[]> {
    return queryRows<HourAggregate>(this.tenant.em, hourlySql(quoteTenantSchema(this.tenant.tenantId)), {deviceId, hours, timezone});
  }
}
