import {Inject, Injectable} from "@tsed/di";
import {pgArray, queryRows} from "../../platform/db/sql.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import type {EpisodeReading} from "../alerts/alert-episodes.js";
import type {EpisodeState} from "../alerts/alert-episode.service.js";
import type {AlertCondition} from "../alerts/alert-rule.entity.js";
import {type DayTotal, dayTotalsSql} from "../stats/day-totals.js";
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
export const readingsSinceSql = (schema: string) => `select r."id"::text as "id", r."temperature_celsius" as "temperatureCelsius", r."recorded_at" as "recordedAt"
  from ${schema}."temperature_readings" r
 where r."device_id" = :deviceId::uuid and r."recorded_at" >= :from
 order by r."recorded_at"`;

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

  /** The device's readings recorded at or after `from`, oldest first: the window a late reading re-derives episodes over. */
  since(deviceId: string, from: Date): Promise<EpisodeReading[]> {
    return queryRows(this.tenant.em, readingsSinceSql(quoteTenantSchema(this.tenant.tenantId)), {deviceId, from});
  }

  /** The stored reading of a device at exactly this instant (the one a duplicate collided with). */
  async findByRecordedAt(deviceId: string, recordedAt: Date): Promise<StoredReading | null> {
    const reading = await this.tenant.em.findOne(TemperatureReading, {deviceId, recordedAt});
    if (!reading) return null;
    const {id, temperatureCelsius, humidity, batteryLevel, createdAt} = reading;
    return {id, deviceId, temperatureCelsius, humidity: humidity ?? null, batteryLevel: batteryLevel ?? null, recordedAt: reading.recordedAt, createdAt};
  }
}
