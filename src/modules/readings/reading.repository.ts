import {Inject, Injectable} from "@tsed/common";
import {pgArray, queryRows} from "../../platform/db/sql.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import type {EpisodeReading} from "../alerts/alert-episodes.js";
import type {EpisodeState} from "../alerts/alert-episode.service.js";
import type {AlertCondition} from "../alerts/alert-rule.entity.js";
import {type DayTotal, dayTotalsSql, type DeviceDayTotal, deviceDayTotalsSql} from "../stats/day-totals.js";
import {TemperatureReading} from "./reading.entity.js";
import type {ReadingInput, StoredReading} from "./reading.models.js";

/** What one ingest statement did and saw. */
export interface IngestResult {
  /** The device exists in the tenant and is active. When it is not, nothing was inserted. */
  deviceActive: boolean;
  /** The transaction's `now()`: the created_at of every reading it inserts. */
  createdAt: Date;
  /** The device's enabled rules (locked FOR SHARE, or FOR UPDATE by the caller) and its newest reading before this insert. */
  state: EpisodeState;
  /** Id of each reading inserted, by recordedAt (epoch ms); duplicates are absent. */
  insertedIds: Map<number, string>;
  /**
   * The readings may change an alert episode (see ingestSql's "alert_change"). With
   * `onlyWithoutAlertChange`, nothing was inserted then.
   */
  alertChangePossible: boolean;
  /** Totals of the inserted readings per local day of the tenant's timezone, for the DailyStats refresh, */
  days: DayTotal[];
  /** and the id of the transaction that inserted them. */
  xid: string;
}

/** An enabled rule with its decision state and open episode, as the ingest statement aggregates them (JSON: instants are text). */
interface RuleRow {
  ruleId: string;
  condition: AlertCondition;
  thresholdCelsius: number;
  evaluatedFrom: string | null;
  open: {
    id: string;
    readingId: string;
    temperatureCelsius: number;
    firedAt: string;
    lastReadingAt: string;
    peakTemperatureCelsius: number;
    readingCount: number;
    acknowledgedAt: string | null;
    acknowledgedById: string | null;
  } | null;
}

interface IngestRow {
  deviceActive: boolean;
  now: Date;
  watermark: Date | null;
  rules: RuleRow[];
  alertChangePossible: boolean;
  /** Ids of the inserted readings, comma-separated (null when none was), */
  ids: string | null;
  /** and their recordedAt in epoch ms, in the same order. */
  instants: string | null;
  days: DayTotal[];
  xid: string;
}

/**
 * The whole database side of an ingest, in one statement and one round trip:
 * - the device check (exists in the tenant and is active): the INSERT takes its device id from it,
 *   so readings of an unknown or inactive device are never stored;
 * - the device's enabled alert rules with their decision state and open episode ("rules"), locked
 *   FOR SHARE until the statement's transaction ends: concurrent lone ingests share the lock, a
 *   write that changes episodes holds it FOR UPDATE (AlertEpisodeService.lockRules), and a rule
 *   change waits for them (and they for it). Read before the statement's own INSERT, like the
 *   device's newest recordedAt ("watermark");
 * - whether the readings can change an alert episode at all ("alert_change"), from the rule row
 *   alone (Migration20261201100000 says why): among the readings the rule evaluates (recorded from
 *   its evaluated_from on, if it has one), one violates it — the same test as `violates` in
 *   alerts/alert-episodes.ts — or falls before the end of its latest episode (it could split
 *   one), or the rule has an open episode, which any reading could extend or resolve. When it is
 *   false, the episodes are what they were whatever these readings' order, and the statement may
 *   stand alone, autocommitted; with `:onlyWithoutAlertChange` it inserts nothing otherwise;
 * - one INSERT … SELECT FROM unnest(…) of every reading (four arrays whatever the batch size). A
 *   reading whose (device, recordedAt) already exists is skipped by ON CONFLICT DO NOTHING, also
 *   when a concurrent transaction is inserting it at this moment (Postgres waits for that one).
 * Only the ids and instants of inserted rows come back, as two comma-separated lists (one aggregate
 * pass, so in the same order): the caller has the rest, and 1,000 result rows (or a JSON array of
 * them) cost more to build and parse than the INSERT's planning. With them, the inserted readings'
 * totals per local day (stats' dayTotalsSql) and the transaction's id: all the DailyStats refresh
 * needs to read.
 *
 * The target list is evaluated left to right: the rules are locked before the INSERT (the "stored"
 * CTE, pulled by the columns after them) runs, also when no guard reads them first.
 */
export const ingestSql = (schema: string) => `with "device" as (
     select d."id" from ${schema}."devices" d where d."id" = :deviceId::uuid and d."is_active"
   ), "input" as (
     select * from unnest(:temperatures::float8[], :humidities::float8[], :batteryLevels::float8[], :instants::float8[]) as v("t", "h", "b", "ms")
   ), "rules" as (
     select r."id" as "ruleId", r."condition", r."threshold_celsius" as "thresholdCelsius", r."evaluated_from" as "evaluatedFrom",
            r."open_alert_id" as "openAlertId", date_part('epoch', r."evaluated_from") * 1000 as "fromMs", date_part('epoch', r."episodes_until") * 1000 as "untilMs"
       from ${schema}."alert_rules" r
      where r."device_id" = :deviceId::uuid and r."is_enabled"
        for share of r
   ), "alert_change" as (
     select exists (
       select 1 from "rules" r
        where r."openAlertId" is not null
           or exists (select 1 from "input" v
                       where (r."fromMs" is null or v."ms" >= r."fromMs")
                         and (case r."condition" when 'above' then v."t" > r."thresholdCelsius" else v."t" < r."thresholdCelsius" end
                              or v."ms" < r."untilMs"))
     ) as "possible"
   ), "stored" as (
     insert into ${schema}."temperature_readings" ("device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at")
     select "device"."id", v."t", v."h", v."b", timestamptz 'epoch' + v."ms" * interval '1 millisecond'
       from "device", "input" v
      where not (:onlyWithoutAlertChange::boolean and (select "possible" from "alert_change"))
     on conflict ("device_id", "recorded_at") do nothing
     returning "id", "recorded_at", "temperature_celsius"
   ), "inserted" as (
     select string_agg(st."id"::text, ',') as "ids", string_agg((date_part('epoch', st."recorded_at") * 1000)::bigint::text, ',') as "instants" from "stored" st
   ), "day_totals" as (
     ${dayTotalsSql(`"stored"`)}
   )
   select exists (select 1 from "device") as "deviceActive",
          now() as "now",
          (select max(tr."recorded_at") from ${schema}."temperature_readings" tr where tr."device_id" = :deviceId::uuid) as "watermark",
          (select coalesce(json_agg(json_build_object(
             'ruleId', r."ruleId", 'condition', r."condition", 'thresholdCelsius', r."thresholdCelsius", 'evaluatedFrom', r."evaluatedFrom",
             'open', (select json_build_object(
                        'id', a."id", 'readingId', a."reading_id"::text, 'temperatureCelsius', a."temperature_celsius", 'firedAt', a."fired_at",
                        'lastReadingAt', a."last_reading_at", 'peakTemperatureCelsius', a."peak_temperature_celsius", 'readingCount', a."reading_count",
                        'acknowledgedAt', a."acknowledged_at", 'acknowledgedById', a."acknowledged_by_id")
                      from ${schema}."alerts" a where a."id" = r."openAlertId")
           ) order by r."ruleId"), '[]'::json) from "rules" r) as "rules",
          (select "possible" from "alert_change") as "alertChangePossible",
          (select "ids" from "inserted") as "ids",
          (select "instants" from "inserted") as "instants",
          (select coalesce(json_agg(dt), '[]'::json) from "day_totals" dt) as "days",
          pg_current_xact_id()::text as "xid"`;

/** A device's readings from :from on, oldest first (a range scan of the (device_id, recorded_at) index). */
export const readingsSinceSql = (
  schema: string
) => `select r."id"::text as "id", r."temperature_celsius" as "temperatureCelsius", r."recorded_at" as "recordedAt"
  from ${schema}."temperature_readings" r
 where r."device_id" = :deviceId::uuid and r."recorded_at" >= :from
 order by r."recorded_at"`;

/** Readings of several devices of the tenant, for one ingest statement (ingestManySql). */
export interface DeviceReadings {
  deviceId: string;
  /** Distinct recordedAt. */
  readings: readonly ReadingInput[];
}

/** What one multi-device ingest statement did and saw. */
export interface IngestManyResult {
  /** The devices that exist in the tenant and are active (the others got nothing). */
  activeDevices: Set<string>;
  /** Devices whose readings may change an alert episode ("alert_change"): nothing of theirs was inserted. */
  alertChangeDevices: Set<string>;
  /** The statement's `now()`: the created_at of every reading it inserted. */
  createdAt: Date;
  /** Per device, the id of each reading inserted by recordedAt (epoch ms); duplicates are absent. */
  insertedIds: Map<string, Map<number, string>>;
  /** Per device, the totals of what was inserted per local day, for the DailyStats refresh, */
  days: Map<string, DayTotal[]>;
  /** and the id of the (autocommitted) transaction that inserted them. */
  xid: string;
}

interface IngestManyRow {
  activeDevices: string[] | null;
  alertChangeDevices: string[] | null;
  now: Date;
  /** Inserted readings: ids, device ids and recordedAt in epoch ms, comma-separated, in one order (null when none was). */
  ids: string | null;
  devices: string | null;
  instants: string | null;
  days: DeviceDayTotal[];
  xid: string;
}

/**
 * ingestSql for readings of many devices of one tenant at once (the MQTT group commit): one
 * statement, one round trip, one autocommitted transaction for all of them, with exactly the rules
 * of a lone ingest, device by device:
 * - only active devices of the tenant get readings ("device"; the device ids are sent once, with
 *   the readings);
 * - each device's enabled rules are read and locked FOR SHARE ("rules"), and the same
 *   "alert_change" test as ingestSql's decides, per device, whether its readings could change an
 *   episode. Such a device gets nothing here: its readings go through the transactional path of a
 *   lone device (ReadingService.writeWithAlerts), as they would have over HTTP. The INSERT reads
 *   "alert_change" for its first row, so the rules are locked (and a writer holding them FOR
 *   UPDATE waited for) before any reading is inserted;
 * - one INSERT … SELECT FROM unnest(…) of the other devices' readings, ON CONFLICT DO NOTHING
 *   (retries and redeliveries are duplicates), in input order (the caller sorts by device and
 *   time, so concurrent statements take their row locks in one order).
 * Back come the active and alert-change devices, the inserted readings (three comma-separated
 * lists from one aggregate pass, so in one order), their totals per device and local day, and the
 * transaction id: all the DailyStats refresh needs.
 */
export const ingestManySql = (schema: string) => `with "input" as (
     select * from unnest(:deviceIds::uuid[], :temperatures::float8[], :humidities::float8[], :batteryLevels::float8[], :instants::float8[]) with ordinality as v("deviceId", "t", "h", "b", "ms", "n")
   ), "device" as (
     select d."id" from ${schema}."devices" d where d."id" in (select distinct v."deviceId" from "input" v) and d."is_active"
   ), "rules" as (
     select r."device_id" as "deviceId", r."condition", r."threshold_celsius" as "thresholdCelsius", r."open_alert_id" as "openAlertId",
            date_part('epoch', r."evaluated_from") * 1000 as "fromMs", date_part('epoch', r."episodes_until") * 1000 as "untilMs"
       from ${schema}."alert_rules" r
      where r."device_id" in (select "device"."id" from "device") and r."is_enabled"
        for share of r
   ), "alert_change" as (
     select distinct r."deviceId" from "rules" r
      where r."openAlertId" is not null
         or exists (select 1 from "input" v
                     where v."deviceId" = r."deviceId"
                       and (r."fromMs" is null or v."ms" >= r."fromMs")
                       and (case r."condition" when 'above' then v."t" > r."thresholdCelsius" else v."t" < r."thresholdCelsius" end
                            or v."ms" < r."untilMs"))
   ), "stored" as (
     insert into ${schema}."temperature_readings" ("device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at")
     select v."deviceId", v."t", v."h", v."b", timestamptz 'epoch' + v."ms" * interval '1 millisecond'
       from "input" v
      where v."deviceId" not in (select ac."deviceId" from "alert_change" ac)
        and v."deviceId" in (select "device"."id" from "device")
      order by v."n"
     on conflict ("device_id", "recorded_at") do nothing
     returning "id", "device_id", "recorded_at", "temperature_celsius"
   ), "inserted" as (
     select string_agg(st."id"::text, ',') as "ids", string_agg(st."device_id"::text, ',') as "devices",
            string_agg((date_part('epoch', st."recorded_at") * 1000)::bigint::text, ',') as "instants"
       from "stored" st
   ), "day_totals" as (
     ${deviceDayTotalsSql(`"stored"`)}
   )
   select (select array_agg(ac."deviceId"::text) from "alert_change" ac) as "alertChangeDevices",
          (select array_agg("device"."id"::text) from "device") as "activeDevices",
          now() as "now",
          (select "ids" from "inserted") as "ids",
          (select "devices" from "inserted") as "devices",
          (select "instants" from "inserted") as "instants",
          (select coalesce(json_agg(dt), '[]'::json) from "day_totals" dt) as "days",
          pg_current_xact_id()::text as "xid"`;

@Injectable()
export class ReadingRepository {
  @Inject()
  private tenant!: TenantContext;

  /**
   * Runs ingestSql for readings of one device (distinct recordedAt).
   * @param onlyWithoutAlertChange insert only when the readings cannot change an alert episode, so
   *   that the statement can run on its own, autocommitted: it is then the whole write
   */
  async ingest(deviceId: string, readings: readonly ReadingInput[], onlyWithoutAlertChange = false): Promise<IngestResult> {
    const tenantId = this.tenant.tenantId;
    const [row] = (await queryRows<IngestRow>(
      this.tenant.em,
      ingestSql(quoteTenantSchema(tenantId)),
      {
        deviceId,
        tenantId,
        onlyWithoutAlertChange,
        temperatures: pgArray(readings.map((r) => r.temperatureCelsius)),
        humidities: pgArray(readings.map((r) => r.humidity)),
        batteryLevels: pgArray(readings.map((r) => r.batteryLevel)),
        // Instants as epoch milliseconds: exact (integers well below 2^53), and neither side formats or parses text.
        instants: pgArray(readings.map((r) => r.recordedAt.getTime()))
      },
      // Planning this statement costs Postgres more than running it for one reading.
      {prepare: true}
    )) as [IngestRow];
    const insertedIds = new Map<number, string>();
    if (row.ids !== null && row.instants !== null) {
      const ids = row.ids.split(",");
      const instants = row.instants.split(",");
      for (let i = 0; i < ids.length; i++) insertedIds.set(Number(instants[i]), ids[i]!);
    }
    return {
      deviceActive: row.deviceActive,
      createdAt: row.now,
      state: {
        watermark: row.watermark,
        rules: row.rules.map(({open, ...rule}) => ({
          ...rule,
          evaluatedFrom: rule.evaluatedFrom === null ? null : new Date(rule.evaluatedFrom),
          open: open && {
            ...open,
            firedAt: new Date(open.firedAt),
            lastReadingAt: new Date(open.lastReadingAt),
            resolvedAt: null,
            acknowledgedAt: open.acknowledgedAt === null ? null : new Date(open.acknowledgedAt)
          }
        }))
      },
      insertedIds,
      alertChangePossible: row.alertChangePossible,
      days: row.days,
      xid: row.xid
    };
  }

  /**
   * Runs ingestManySql, autocommitted: readings of several devices (each with distinct
   * recordedAt, device ids in lower case), inserted for the devices whose readings cannot change
   * an alert episode.
   */
  async ingestMany(batches: readonly DeviceReadings[]): Promise<IngestManyResult> {
    const tenantId = this.tenant.tenantId;
    const deviceIds: string[] = [];
    const temperatures: number[] = [];
    const humidities: (number | null)[] = [];
    const batteryLevels: (number | null)[] = [];
    const instants: number[] = [];
    for (const {deviceId, readings} of batches) {
      for (const r of readings) {
        deviceIds.push(deviceId);
        temperatures.push(r.temperatureCelsius);
        humidities.push(r.humidity);
        batteryLevels.push(r.batteryLevel);
        instants.push(r.recordedAt.getTime());
      }
    }
    const [row] = (await queryRows<IngestManyRow>(
      this.tenant.em,
      ingestManySql(quoteTenantSchema(tenantId)),
      {
        tenantId,
        deviceIds: pgArray(deviceIds),
        temperatures: pgArray(temperatures),
        humidities: pgArray(humidities),
        batteryLevels: pgArray(batteryLevels),
        instants: pgArray(instants)
      },
      {prepare: true}
    )) as [IngestManyRow];
    const insertedIds = new Map<string, Map<number, string>>();
    if (row.ids !== null && row.devices !== null && row.instants !== null) {
      const ids = row.ids.split(",");
      const devices = row.devices.split(",");
      const times = row.instants.split(",");
      for (let i = 0; i < ids.length; i++) {
        let byTime = insertedIds.get(devices[i]!);
        if (!byTime) insertedIds.set(devices[i]!, (byTime = new Map()));
        byTime.set(Number(times[i]), ids[i]!);
      }
    }
    const days = new Map<string, DayTotal[]>();
    for (const {deviceId, ...day} of row.days) {
      const list = days.get(deviceId);
      if (list) list.push(day);
      else days.set(deviceId, [day]);
    }
    return {
      activeDevices: new Set(row.activeDevices ?? []),
      alertChangeDevices: new Set(row.alertChangeDevices ?? []),
      createdAt: row.now,
      insertedIds,
      days,
      xid: row.xid
    };
  }

  /** The device's readings recorded at or after `from`, oldest first: the window a late reading re-derives episodes over. */
  since(deviceId: string, from: Date): Promise<EpisodeReading[]> {
    return queryRows(this.tenant.em, readingsSinceSql(quoteTenantSchema(this.tenant.tenantId)), {deviceId, from});
  }

  /** The stored reading of a device at exactly this instant (the one a duplicate collided with). */
  async findByRecordedAt(deviceId: string, recordedAt: Date): Promise<StoredReading | null> {
    const reading = await this.tenant.em.findOne(TemperatureReading, {deviceId, recordedAt});
    if (!reading) return null;
    const {id, temperatureCelsius, humidity, batteryLevel, createdAt} = reading;
    return {
      id,
      deviceId,
      temperatureCelsius,
      humidity: humidity ?? null,
      batteryLevel: batteryLevel ?? null,
      recordedAt: reading.recordedAt,
      createdAt
    };
  }
}
