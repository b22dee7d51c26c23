import {Inject, Injectable} from "@tsed/common";
import {LRUCache} from "lru-cache";
import {type Bindings, isLockTimeout, isUniqueViolation, pgArray, queryRows} from "../../platform/db/sql.js";
import {TenantAffineConnections} from "../../platform/db/tenant-affine-connections.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import type {EpisodeReading, EpisodeState, Threshold} from "../alerts/alert-episodes.js";
import type {AlertCondition} from "../alerts/alert-rule.entity.js";
import {violatesSql} from "../alerts/alert-predicate.js";
import {
  alertChangeSql,
  ingestRulesSql,
  recordArrivalSql,
  type RuleStateJson,
  ruleStatesOf,
  ruleStatesSql
} from "../alerts/alert-rules-at-ingest.js";
import {type DayTotal, type DeviceDayTotal, deviceDayTotalsSql} from "../stats/day-totals.js";
import {TemperatureReading} from "./reading.entity.js";
import type {ReadingInput, StoredReading} from "./reading.models.js";

/** Readings of one device for the ingest statement: distinct recordedAt, in time order. */
export interface DeviceReadings {
  deviceId: string;
  readings: readonly ReadingInput[];
}

/** What one ingest statement did and saw. */
export interface IngestResult {
  /** The devices that exist in the tenant and are active (the others got nothing). */
  activeDevices: Set<string>;
  /** Devices whose readings may change an alert episode (alertChangeSql): with `onlyWithoutAlertChange`, nothing of theirs was inserted. */
  alertChangeDevices: Set<string>;
  /** The statement's `now()`: the created_at of every reading it inserted. */
  createdAt: Date;
  /** Per device, the id of each reading inserted by recordedAt (epoch ms); duplicates are absent. */
  insertedIds: Map<string, Map<number, string>>;
  /** Per device, the totals of what was inserted per local day, for the DailyStats refresh, */
  days: Map<string, DayTotal[]>;
  /** and the id of the transaction that inserted them. */
  xid: string;
  /** Per active device, its evaluated rules' thresholds (none: no entry), for ReadingService's AlertPathHint. */
  thresholds: Map<string, Threshold[]>;
  /** With `withEpisodeState`: per active device, its rules' decision state and its newest reading before this insert. */
  episodeStates: Map<string, EpisodeState>;
}

interface IngestRow {
  activeDevices: string[] | null;
  alertChangeDevices: string[] | null;
  now: Date;
  /** Inserted readings per device: its id, and their ids and recordedAt in epoch ms, comma-separated, in one order (null when none was). */
  inserted: [deviceId: string, ids: string, instants: string][] | null;
  days: DeviceDayTotal[];
  xid: string;
  thresholds: [string, AlertCondition, number][] | null;
  episodeStates: Record<string, {watermark: string | null; rules: RuleStateJson[]}> | null;
}

/**
 * The whole database side of an ingest, for readings of one or many devices of the tenant, in one
 * statement and one round trip. The readings feature writes it; the alerts feature lends the rule
 * fragments (alert-rules-at-ingest.ts), the stats feature the day totals (day-totals.ts):
 * - only active devices of the tenant get readings ("device"); each reading names its device by
 *   position in :deviceIds (small integers, not 1,000 copies of a uuid);
 * - the devices' evaluated rules, locked FOR SHARE ("rules": ingestRulesSql), and per device
 *   whether its readings may change an episode ("alert_change": alertChangeSql); the arrival of
 *   devices watched by a no_data rule ("arrival": recordArrivalSql). With
 *   :onlyWithoutAlertChange (the autocommitted path) such a device gets nothing here: its
 *   readings go through the transactional path (ReadingWriter.withAlerts). The INSERT reads
 *   "alert_change" for its first row, so the rules are locked (and a writer holding them FOR
 *   UPDATE waited for) before any reading is inserted;
 * - one INSERT … SELECT FROM unnest(…) of the readings, ON CONFLICT DO NOTHING (a retry or a
 *   redelivery is a duplicate, also when a concurrent transaction is inserting it at this moment:
 *   Postgres waits for that one), in input order (the caller sorts by device and time, so
 *   concurrent statements take their row locks in one order). With `fresh`, a text of its own
 *   without ON CONFLICT, for readings expected to be new: it fails on the first duplicate, and
 *   ReadingRepository.ingest then runs the usual text. Speculative insertion was ~20 % of a
 *   1,000-reading autocommitted statement's round trip (bench:ingest-input, docs/scaling.md).
 * Back come the active and alert-change devices, the inserted readings (per device, two
 * comma-separated lists from one aggregate pass, so in one order: 1,000 result rows cost more to
 * build and parse than the INSERT's planning, and a list naming each reading's device was 37 kB of
 * the same uuid for a one-device batch), their totals per device and local day (deviceDayTotalsSql) and the
 * transaction id: all the DailyStats refresh needs; the rules' thresholds (for the next write's
 * choice of path, AlertPathHint). With `withEpisodeState` (the transactional path) also each
 * device's rule states (ruleStatesSql) and newest reading ("watermark"), both as of before the
 * INSERT (one snapshot for the whole statement). Without it, a text of its own that leaves that
 * branch out: the autocommitted path never reads it, and it was half of the statement's planning
 * time, which a load spread over many tenants pays often (docs/scaling.md).
 */
export const ingestSql = (
  schema: string,
  {withEpisodeState, fresh = false}: {withEpisodeState: boolean; fresh?: boolean}
) => `with "input" as (
     select (:deviceIds::uuid[])[v."i"] as "deviceId", v."t", v."h", v."b", v."ms", v."n"
       from unnest(:deviceIndexes::int[], :temperatures::float8[], :humidities::float8[], :batteryLevels::float8[], :instants::float8[]) with ordinality as v("i", "t", "h", "b", "ms", "n")
   ), "device" as (
     select d."id" from ${schema}."devices" d where d."id" = any(:deviceIds::uuid[]) and d."is_active"
   ), "rules" as (
     ${ingestRulesSql(schema, `"device"`)}
   ), "alert_change" as (
     ${alertChangeSql(`"rules"`, `"input"`)}
   ), "arrival" as (
     ${recordArrivalSql(
       schema,
       `"rules"`,
       `(select v."deviceId" from "input" v
          where not (:onlyWithoutAlertChange::boolean and v."deviceId" in (select ac."deviceId" from "alert_change" ac)))`
     )}
   ), "stored" as (
     insert into ${schema}."temperature_readings" ("device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at")
     select v."deviceId", v."t", v."h", v."b", timestamptz 'epoch' + v."ms" * interval '1 millisecond'
       from "input" v
      where v."deviceId" in (select "device"."id" from "device")
        and not (:onlyWithoutAlertChange::boolean and v."deviceId" in (select ac."deviceId" from "alert_change" ac))
      order by v."n"${
        fresh
          ? ""
          : `
     on conflict ("device_id", "recorded_at") do nothing`
      }
     returning "id", "device_id", "recorded_at", "temperature_celsius"
   ), "inserted" as (
     select st."device_id"::text as "deviceId", string_agg(st."id"::text, ',') as "ids",
            string_agg((date_part('epoch', st."recorded_at") * 1000)::bigint::text, ',') as "instants"
       from "stored" st
      group by st."device_id"
   ), "day_totals" as (
     ${deviceDayTotalsSql(`"stored"`)}
   )
   select (select array_agg(ac."deviceId"::text) from "alert_change" ac) as "alertChangeDevices",
          (select array_agg("device"."id"::text) from "device") as "activeDevices",
          now() as "now",
          (select json_agg(json_build_array(i."deviceId", i."ids", i."instants")) from "inserted" i) as "inserted",
          (select coalesce(json_agg(dt), '[]'::json) from "day_totals" dt) as "days",
          pg_current_xact_id()::text as "xid",
          (select json_agg(json_build_array(r."deviceId", r."condition", r."thresholdCelsius")) from "rules" r where r."condition" is not null) as "thresholds",
          ${
            withEpisodeState
              ? `(select json_object_agg(d."id", json_build_object(
             'watermark', (select max(tr."recorded_at") from ${schema}."temperature_readings" tr where tr."device_id" = d."id"),
             'rules', ${ruleStatesSql(schema, `"rules"`, `d."id"`)}))
             from "device" d)`
              : "null::json"
          } as "episodeStates"`;

/**
 * ingestSql's bindings for readings of one or many devices (each with distinct recordedAt, device
 * ids in lower case): the readings as parallel arrays, one literal per column (pgArray). One JSON
 * parameter read by json_to_recordset instead was measured 6–13 % slower per 1,000-reading batch,
 * in the API and in Postgres alike (bench:ingest-input).
 */
export function ingestBindings(
  tenantId: string,
  batches: readonly DeviceReadings[],
  options: {onlyWithoutAlertChange: boolean; withEpisodeState: boolean}
): Bindings {
  const deviceIds: string[] = [];
  const deviceIndexes: number[] = [];
  const temperatures: number[] = [];
  const humidities: (number | null)[] = [];
  const batteryLevels: (number | null)[] = [];
  const instants: number[] = [];
  for (const {deviceId, readings} of batches) {
    deviceIds.push(deviceId);
    for (const r of readings) {
      deviceIndexes.push(deviceIds.length);
      temperatures.push(r.temperatureCelsius);
      humidities.push(r.humidity);
      batteryLevels.push(r.batteryLevel);
      // Instants as epoch milliseconds: exact (integers well below 2^53), and neither side formats or parses text.
      instants.push(r.recordedAt.getTime());
    }
  }
  return {
    tenantId,
    onlyWithoutAlertChange: options.onlyWithoutAlertChange,
    deviceIds: pgArray(deviceIds),
    deviceIndexes: pgArray(deviceIndexes),
    temperatures: pgArray(temperatures),
    humidities: pgArray(humidities),
    batteryLevels: pgArray(batteryLevels),
    instants: pgArray(instants)
  };
}

/** A device's readings from :from on, oldest first (a range scan of the (device_id, recorded_at) index). */
export const readingsSinceSql = (
  schema: string
) => `select r."id"::text as "id", r."temperature_celsius" as "temperatureCelsius", r."recorded_at" as "recordedAt"
  from ${schema}."temperature_readings" r
 where r."device_id" = :deviceId::uuid and r."recorded_at" >= :from
 order by r."recorded_at"`;

/**
 * Where the run of readings violating a rule that ends just before :before began: the recordedAt
 * of its first reading (null when the reading just before :before does not violate, or there is
 * none from :notBefore). The last non-violating reading is found by a backward scan of the
 * (device_id, recorded_at) index that stops at it, so the cost is the run's length (a run that has
 * not fired is shorter than the rule's forSeconds).
 */
export const runStartSql = (schema: string) => `with "cut" as (
     select max(r."recorded_at") as "at" from ${schema}."temperature_readings" r
      where r."device_id" = :deviceId::uuid and r."recorded_at" < :before and r."recorded_at" >= coalesce(:notBefore::timestamptz, '-infinity')
        and not ${violatesSql({condition: ":condition::text", threshold: ":threshold::float8"}, `r."temperature_celsius"`)}
   )
   select min(r."recorded_at") as "start" from ${schema}."temperature_readings" r, "cut"
    where r."device_id" = :deviceId::uuid and r."recorded_at" < :before and r."recorded_at" >= coalesce(:notBefore::timestamptz, '-infinity')
      and ("cut"."at" is null or r."recorded_at" > "cut"."at")`;

/**
 * Ingest texts kept built (a tenant has up to four, one per variant): more than the ingest
 * connections keep prepared between them by default (1,024), and as many as
 * TenantAffineConnections keeps converted at the least. A text past it is only built again, never
 * wrong.
 */
const INGEST_TEXTS_KEPT = 2_000;

/**
 * A plain INSERT (ReadingRepository.ingest, `fresh`) met a reading stored already, inside a
 * transaction: the transaction is spoilt and nothing of it stands; run it again without `fresh`.
 * Its own class, so that the caller cannot take another unique violation of the transaction for it.
 */
export class FreshReadingsStoredAlready extends Error {
  constructor(cause: unknown) {
    super("A reading expected to be new was stored already", {cause});
    this.name = "FreshReadingsStoredAlready";
  }
}

@Injectable()
export class ReadingRepository {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private affine!: TenantAffineConnections;

  /**
   * ingestSql's texts by variant and tenant, built once: building the ~5 kB text and then hashing
   * it anew to find its prepared statement cost ~30 µs per request when each request named
   * another tenant (bench:profile spread-single). The same string object again is found at once.
   */
  private readonly ingestTexts = new LRUCache<string, string>({max: INGEST_TEXTS_KEPT});

  /**
   * Runs ingestSql for readings of one or many devices (each with distinct recordedAt, device ids in lower case).
   * @param options.onlyWithoutAlertChange insert only the readings of devices whose readings cannot
   *   change an alert episode, so that the statement can run on its own, autocommitted
   * @param options.withEpisodeState read the devices' rule states and newest readings too (the transactional path)
   * @param options.onTenantConnection run it on the tenant's own connection, committed with other
   *   tenants' statements (TenantAffineConnections): for the autocommitted statement of a group write
   * @param options.fresh the readings are expected to be new (none stored yet): a plain INSERT,
   *   and the usual statement only if it meets a duplicate after all. In a transaction, which the
   *   failed statement has ended, FreshReadingsStoredAlready is thrown: the caller runs the
   *   transaction again without `fresh`.
   * @throws FreshReadingsStoredAlready (only with `fresh`, in a transaction)
   */
  async ingest(
    batches: readonly DeviceReadings[],
    options: {onlyWithoutAlertChange: boolean; withEpisodeState: boolean; onTenantConnection?: boolean; fresh?: boolean}
  ): Promise<IngestResult> {
    const tenantId = this.tenant.tenantId;
    const bindings = ingestBindings(tenantId, batches, options);
    const fresh = options.fresh === true;
    let row: IngestRow;
    try {
      row = await this.runIngest(tenantId, this.ingestText(tenantId, {...options, fresh}), bindings, options);
    } catch (error) {
      // The statement's one unique index is the readings' (device, recordedAt): a reading stored already.
      if (!fresh || !isUniqueViolation(error)) throw error;
      if (this.tenant.inTransaction) throw new FreshReadingsStoredAlready(error);
      row = await this.runIngest(tenantId, this.ingestText(tenantId, {...options, fresh: false}), bindings, options);
    }
    const insertedIds = new Map<string, Map<number, string>>();
    for (const [deviceId, idList, instantList] of row.inserted ?? []) {
      const ids = idList.split(",");
      const times = instantList.split(",");
      const byTime = new Map<number, string>();
      for (let i = 0; i < ids.length; i++) byTime.set(Number(times[i]), ids[i]!);
      insertedIds.set(deviceId, byTime);
    }
    const days = new Map<string, DayTotal[]>();
    for (const {deviceId, ...day} of row.days) {
      const list = days.get(deviceId);
      if (list) list.push(day);
      else days.set(deviceId, [day]);
    }
    const thresholds = new Map<string, Threshold[]>();
    for (const [deviceId, condition, thresholdCelsius] of row.thresholds ?? []) {
      const list = thresholds.get(deviceId);
      if (list) list.push({condition, thresholdCelsius});
      else thresholds.set(deviceId, [{condition, thresholdCelsius}]);
    }
    const episodeStates = new Map<string, EpisodeState>();
    for (const [deviceId, {watermark, rules}] of Object.entries(row.episodeStates ?? {}))
      episodeStates.set(deviceId, {watermark: watermark === null ? null : new Date(watermark), rules: ruleStatesOf(rules)});
    return {
      activeDevices: new Set(row.activeDevices ?? []),
      alertChangeDevices: new Set(row.alertChangeDevices ?? []),
      createdAt: row.now,
      insertedIds,
      days,
      xid: row.xid,
      thresholds,
      episodeStates
    };
  }

  private async runIngest(tenantId: string, sql: string, bindings: Bindings, options: {onTenantConnection?: boolean}): Promise<IngestRow> {
    // Planning this statement costs Postgres more than running it for one reading: prepared (on
    // the tenant's own connection, where its plan is reused however many tenants there are).
    const onPool = () => queryRows<IngestRow>(this.tenant.em, sql, bindings, {prepare: true});
    const [row] =
      options.onTenantConnection && this.affine.enabled && !this.tenant.inTransaction
        ? await this.affine.queryRows<IngestRow>(tenantId, sql, bindings).catch((error: unknown) => {
            // A lock it needs was held (say its device's rules, by a rule being edited or the device's
            // episode-changing write): it did nothing, and waits on the pool rather than in front of
            // its connection's other tenants.
            if (isLockTimeout(error)) return onPool();
            throw error;
          })
        : await onPool();
    return row!;
  }

  private ingestText(tenantId: string, options: {withEpisodeState: boolean; fresh: boolean}): string {
    const key = `${options.withEpisodeState ? "episodes" : "plain"}${options.fresh ? "-fresh" : ""}:${tenantId}`;
    let text = this.ingestTexts.get(key);
    if (text === undefined) this.ingestTexts.set(key, (text = ingestSql(quoteTenantSchema(tenantId), options)));
    return text;
  }

  /** The device's readings recorded at or after `from`, oldest first: the window a late reading re-derives episodes over. */
  since(deviceId: string, from: Date): Promise<EpisodeReading[]> {
    return queryRows(this.tenant.em, readingsSinceSql(quoteTenantSchema(this.tenant.tenantId)), {deviceId, from});
  }

  /** runStartSql: where the run of readings violating `rule` that ends just before `before` began (null: no such run). */
  async runStart(deviceId: string, rule: Threshold, before: Date, notBefore: Date | null): Promise<Date | null> {
    const [row] = await queryRows<{start: Date | null}>(this.tenant.em, runStartSql(quoteTenantSchema(this.tenant.tenantId)), {
      deviceId,
      before,
      notBefore,
      condition: rule.condition,
      threshold: rule.thresholdCelsius
    });
    return row?.start ?? null;
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
