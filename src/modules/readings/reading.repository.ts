import {Inject, Injectable} from "@tsed/di";
import {pgArray, queryRows, toDate} from "../../platform/db/sql.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import {alertChangePossible, type EpisodeState, ruleStateRows, type StateRow, toEpisodeState} from "../alerts/alert.repository.js";
import {TemperatureReading} from "./reading.entity.js";
import type {ReadingData, ReadingInput} from "./reading.models.js";
import type {DayTotal} from "./readings-written.js";

/** What one ingest statement did and saw. */
export interface IngestResult {
  /** The device exists in the tenant and is active. When it is not, nothing was inserted. */
  deviceActive: boolean;
  /** The transaction's `now()`: the created_at of every reading it inserts. */
  createdAt: Date;
  /** The device's enabled rules (now locked FOR SHARE) and its newest reading before this insert. */
  state: EpisodeState;
  /** Id of each reading inserted, by recordedAt (epoch ms); duplicates are absent. */
  insertedIds: Map<number, string>;
  /**
   * An enabled rule has an open alert, or one of the readings violates an enabled rule: the
   * readings may change an alert episode. With `onlyWithoutAlertChange`, nothing was inserted then.
   */
  alertChangePossible: boolean;
  /** Totals of the inserted readings per local day of the tenant's timezone, for the DailyStats refresh. */
  days: DayTotal[];
}

export interface IngestOptions {
  /**
   * Insert only when the readings cannot change an alert episode (see alertChangePossible), so
   * that the statement can run on its own, autocommitted: it is then the whole write.
   */
  onlyWithoutAlertChange?: boolean;
}

interface IngestRow {
  deviceActive: boolean;
  now: string;
  watermark: string | null;
  rules: StateRow[];
  alertChangePossible: boolean;
  /** Ids of the inserted readings, comma-separated (null when none was), */
  ids: string | null;
  /** and their recordedAt in epoch ms, in the same order. */
  instants: string | null;
  /** Totals of the inserted readings per local day. */
  days: DayTotal[];
}

/**
 * SQL: the totals of the rows of `stored` ("recorded_at", "temperature_celsius") per local day of
 * the tenant's timezone (UTC when the tenant is not registered), rows of DayTotal. Its one `?` is
 * the tenant id.
 */
export function dayTotalsQuery(stored: string): string {
  return `select ((st."recorded_at" at time zone tz."name")::date)::text as "date",
           count(*)::int as "readingCount",
           avg(st."temperature_celsius") as "avgTemperatureCelsius",
           min(st."temperature_celsius") as "minTemperatureCelsius",
           max(st."temperature_celsius") as "maxTemperatureCelsius"
      from ${stored} st
     cross join (select coalesce((select t."timezone" from "public"."tenants" t where t."id" = ?), 'UTC') as "name") tz
     group by 1`;
}

@Injectable()
export class ReadingRepository {
  @Inject()
  private tenant!: TenantContext;

  /**
   * The whole database side of an ingest, in one statement and one round trip:
   * - the device check (exists in the tenant and is active) — the INSERT takes its device id from
   *   it, so readings of an unknown or inactive device are never stored;
   * - the alert rule state (ruleStateRows, rules locked FOR SHARE) and the device's newest
   *   recordedAt, both read from the statement's snapshot, i.e. before its own INSERT, and whether
   *   the readings can change an alert episode at all;
   * - one INSERT … SELECT FROM unnest(…) of every reading (four arrays whatever the batch size).
   *   A reading whose (device, recordedAt) already exists is skipped by ON CONFLICT DO NOTHING,
   *   also when a concurrent transaction is inserting it at this moment (Postgres waits for that
   *   one to finish). With `onlyWithoutAlertChange` it inserts nothing when an episode may change.
   * Only the ids and instants of inserted rows come back, as two comma-separated lists (one
   * aggregate pass, so in the same order): the caller has the rest, and 1,000 result rows (or a
   * JSON array of them) cost more to build and parse than the INSERT's planning. With them, the
   * inserted readings' totals per local day (dayTotalsQuery), which is all the DailyStats refresh
   * needs to read.
   */
  async ingest(deviceId: string, readings: readonly ReadingInput[], options: IngestOptions = {}): Promise<IngestResult> {
    const s = quoteTenantSchema(this.tenant.tenantId);
    // The target list is evaluated left to right: the rules are locked before the INSERT (the
    // `stored` CTE, pulled by the columns after them) runs, also when no guard reads them first.
    const [row] = await queryRows<IngestRow>(
      this.tenant.em,
      `with "device" as (
         select d."id" from ${s}."devices" d where d."id" = ?::uuid and d."is_active"
       ), "input" as (
         select * from unnest(?::float8[], ?::float8[], ?::float8[], ?::float8[]) as v("t", "h", "b", "ms")
       ), "rules" as (
         ${ruleStateRows(s)}
       ), "alert_change" as (
         select ${alertChangePossible(`"rules"`, `"input"`)} as "possible"
       ), "stored" as (
         insert into ${s}."temperature_readings" ("device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at")
         select "device"."id", v."t", v."h", v."b", timestamptz 'epoch' + v."ms" * interval '1 millisecond'
           from "device", "input" v
          where not (?::boolean and (select "possible" from "alert_change"))
         on conflict ("device_id", "recorded_at") do nothing
         returning "id", "recorded_at", "temperature_celsius"
       ), "inserted" as (
         select string_agg(st."id"::text, ',') as "ids", string_agg((date_part('epoch', st."recorded_at") * 1000)::bigint::text, ',') as "instants" from "stored" st
       ), "day_totals" as (
         ${dayTotalsQuery(`"stored"`)}
       )
       select exists (select 1 from "device") as "deviceActive",
              now() as "now",
              (select max(tr."recorded_at") from ${s}."temperature_readings" tr where tr."device_id" = ?::uuid) as "watermark",
              (select coalesce(json_agg(r order by r."rule_id"), '[]'::json) from "rules" r) as "rules",
              (select "possible" from "alert_change") as "alertChangePossible",
              (select "ids" from "inserted") as "ids",
              (select "instants" from "inserted") as "instants",
              (select coalesce(json_agg(dt), '[]'::json) from "day_totals" dt) as "days"`,
      [
        deviceId,
        pgArray(readings.map((r) => r.temperatureCelsius)),
        pgArray(readings.map((r) => r.humidity)),
        pgArray(readings.map((r) => r.batteryLevel)),
        // Instants as epoch milliseconds: exact (integers well below 2^53), and neither side formats or parses text.
        pgArray(readings.map((r) => r.recordedAt.getTime())),
        deviceId,
        options.onlyWithoutAlertChange === true,
        this.tenant.tenantId,
        deviceId
      ],
      // Planning this statement costs Postgres more than running it for one reading.
      {prepare: true}
    );
    const insertedIds = new Map<number, string>();
    if (row!.ids !== null && row!.instants !== null) {
      const ids = row!.ids.split(",");
      const instants = row!.instants.split(",");
      for (let i = 0; i < ids.length; i++) insertedIds.set(Number(instants[i]), ids[i]!);
    }
    return {
      deviceActive: row!.deviceActive,
      createdAt: toDate(row!.now),
      state: toEpisodeState(row!.rules, row!.watermark === null ? null : toDate(row!.watermark)),
      insertedIds,
      alertChangePossible: row!.alertChangePossible,
      days: row!.days
    };
  }

  /** The stored reading of a device at exactly this instant (the one a duplicate collided with). */
  async findByRecordedAt(deviceId: string, recordedAt: Date): Promise<ReadingData | null> {
    const reading = await this.tenant.em.findOne(TemperatureReading, {deviceId, recordedAt});
    if (!reading) return null;
    const {id, temperatureCelsius, humidity, batteryLevel, createdAt} = reading;
    return {id, deviceId, temperatureCelsius, humidity: humidity ?? null, batteryLevel: batteryLevel ?? null, recordedAt: reading.recordedAt, createdAt};
  }
}
