import {Inject, Injectable} from "@tsed/di";
import {queryRows, toDate} from "../../platform/db/sql.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import {Alert} from "./alert.entity.js";
import type {AlertCondition} from "./alert-rule.entity.js";
import type {AlertAdvance, AlertOpening, RuleState, StoredEpisode} from "./alert-episodes.js";

/** The columns of an alert as the API returns them (the Alert model). */
export type AlertData = Pick<
  Alert,
  | "id"
  | "createdAt"
  | "updatedAt"
  | "ruleId"
  | "deviceId"
  | "readingId"
  | "temperatureCelsius"
  | "firedAt"
  | "lastReadingAt"
  | "peakTemperatureCelsius"
  | "readingCount"
  | "resolvedAt"
  | "acknowledgedAt"
  | "acknowledgedById"
>;

export interface EpisodeState {
  rules: RuleState[];
  /** Newest recordedAt of the device's readings before this write (null: none yet). */
  watermark: Date | null;
}

export interface AlertFilter {
  acknowledged?: boolean;
  open?: boolean;
}

export const MAX_ALERTS_LISTED = 50;

export interface StateRow {
  rule_id: string;
  condition: AlertCondition;
  threshold_celsius: number;
  alert_id: string | null;
  fired_at: string | null;
  last_reading_at: string | null;
}

interface EpisodeRow {
  id: string;
  rule_id: string;
  fired_at: string;
  last_reading_at: string;
  resolved_at: string;
}

interface AlertRow {
  id: string;
  created_at: string;
  updated_at: string;
  rule_id: string;
  device_id: string;
  reading_id: string | null;
  temperature_celsius: number;
  fired_at: string;
  last_reading_at: string;
  peak_temperature_celsius: number;
  reading_count: number;
  resolved_at: string | null;
  acknowledged_at: string | null;
  acknowledged_by_id: string | null;
}

/**
 * The device's enabled rules with their open alert (rows of StateRow), as the body of a CTE of the
 * ingest statement (ReadingRepository.ingest), read in the same round trip as its INSERT; the one
 * `?` is the device id. Rule rows are locked FOR SHARE until the statement's transaction ends:
 * concurrent ingests share the lock, while disabling or changing a rule waits for them (and they
 * for it), so an alert is never opened for a rule that has just been disabled.
 */
export function ruleStateRows(schema: string): string {
  return `select r."id" as "rule_id", r."condition", r."threshold_celsius", a."id" as "alert_id", a."fired_at", a."last_reading_at"
        from ${schema}."alert_rules" r
        left join ${schema}."alerts" a on a."rule_id" = r."id" and a."resolved_at" is null
       where r."device_id" = ? and r."is_enabled"
         for share of r`;
}

/**
 * SQL: can these readings change an alert episode? True when one of the rules (a relation of
 * ruleStateRows) has an open alert, which a reading could extend or resolve, or when a reading
 * (a relation with temperature column "t") violates a rule, the same test as `violates` in
 * alert-episodes.ts. When it is false, planEpisodes has nothing to do: the ingest statement may
 * then stand alone, without a transaction around it for the alert writes.
 */
export function alertChangePossible(rules: string, readings: string): string {
  return `exists (
      select 1 from ${rules} r
       where r."alert_id" is not null
          or exists (select 1 from ${readings} v
                      where case r."condition" when 'above' then v."t" > r."threshold_celsius" else v."t" < r."threshold_celsius" end))`;
}

/** The rows of ruleStateRows and the device's newest reading time before the write, as EpisodeState. */
export function toEpisodeState(rows: readonly StateRow[], watermark: Date | null): EpisodeState {
  return {
    watermark,
    rules: rows.map((row) => ({
      ruleId: row.rule_id,
      condition: row.condition,
      thresholdCelsius: row.threshold_celsius,
      open: row.alert_id ? {id: row.alert_id, firedAt: toDate(row.fired_at!), lastReadingAt: toDate(row.last_reading_at!), resolvedAt: null} : null,
      closed: []
    }))
  };
}

@Injectable()
export class AlertRepository {
  @Inject()
  private tenant!: TenantContext;

  /** Resolved episodes of these rules whose span [firedAt, resolvedAt) overlaps [from, to]. */
  async findResolvedEpisodes(deviceId: string, ruleIds: readonly string[], from: Date, to: Date): Promise<(StoredEpisode & {ruleId: string})[]> {
    const rows = await queryRows<EpisodeRow>(
      this.tenant.em,
      `select "id", "rule_id", "fired_at", "last_reading_at", "resolved_at"
         from ${this.schema()}."alerts"
        where "device_id" = ? and "rule_id" = any(?::uuid[]) and "resolved_at" is not null and "fired_at" <= ? and "resolved_at" > ?
        order by "fired_at"`,
      [deviceId, ruleIds, to.toISOString(), from.toISOString()]
    );
    return rows.map((row) => ({id: row.id, ruleId: row.rule_id, firedAt: toDate(row.fired_at), lastReadingAt: toDate(row.last_reading_at), resolvedAt: toDate(row.resolved_at)}));
  }

  /**
   * Adds readings to stored alerts and resolves open ones, all in one UPDATE. Counters and
   * extremes are applied relative to the row as it is at write time (count + n, greatest/least),
   * so concurrent writers that both extend an episode lose nothing. Each row is only touched if it
   * is still in the state the plan assumed — open (and, when resolving, not reached by a newer
   * violation meanwhile), or already resolved for a past episode; the caller compares the
   * returned rows with what it asked for.
   */
  async advance(advances: readonly AlertAdvance[]): Promise<AlertData[]> {
    if (advances.length === 0) return [];
    const rows = await queryRows<AlertRow>(
      this.tenant.em,
      `update ${this.schema()}."alerts" as a set
          "reading_count" = a."reading_count" + v."added",
          "peak_temperature_celsius" = case when v."condition" = 'above' then greatest(a."peak_temperature_celsius", v."peak")
                                            else least(a."peak_temperature_celsius", v."peak") end,
          "last_reading_at" = greatest(a."last_reading_at", v."last_reading_at"),
          "resolved_at" = coalesce(a."resolved_at", v."resolved_at"),
          "updated_at" = now()
         from unnest(?::uuid[], ?::int[], ?::float8[], ?::timestamptz[], ?::timestamptz[], ?::text[], ?::boolean[])
              as v("id", "added", "peak", "last_reading_at", "resolved_at", "condition", "was_resolved")
        where a."id" = v."id"
          and case when v."was_resolved" then a."resolved_at" is not null
                   else a."resolved_at" is null and (v."resolved_at" is null or a."last_reading_at" < v."resolved_at") end
        returning a.*`,
      [
        advances.map((a) => a.alertId),
        advances.map((a) => a.addedReadings),
        advances.map((a) => a.peakTemperatureCelsius),
        advances.map((a) => a.lastReadingAt?.toISOString() ?? null),
        advances.map((a) => a.resolvedAt?.toISOString() ?? null),
        advances.map((a) => a.condition),
        advances.map((a) => a.wasResolved)
      ]
    );
    return rows.map(toAlertData);
  }

  /**
   * Inserts the episodes a write opened, in one statement. Two writers opening an episode for the
   * same rule at once collide on the partial unique index `alerts_one_open_per_rule`: the later
   * one fails with a unique violation and its transaction is retried.
   */
  async open(deviceId: string, openings: readonly AlertOpening[]): Promise<AlertData[]> {
    if (openings.length === 0) return [];
    const rows = await queryRows<AlertRow>(
      this.tenant.em,
      `insert into ${this.schema()}."alerts" ("id", "created_at", "updated_at", "rule_id", "device_id", "reading_id", "temperature_celsius",
                                              "fired_at", "last_reading_at", "peak_temperature_celsius", "reading_count", "resolved_at")
       select gen_random_uuid(), now(), now(), v."rule_id", ?::uuid, v."reading_id", v."temperature", v."fired_at", v."last_reading_at", v."peak", v."count", v."resolved_at"
         from unnest(?::uuid[], ?::bigint[], ?::float8[], ?::timestamptz[], ?::timestamptz[], ?::float8[], ?::int[], ?::timestamptz[])
              as v("rule_id", "reading_id", "temperature", "fired_at", "last_reading_at", "peak", "count", "resolved_at")
       returning *`,
      [
        deviceId,
        openings.map((o) => o.ruleId),
        openings.map((o) => o.readingId),
        openings.map((o) => o.temperatureCelsius),
        openings.map((o) => o.firedAt.toISOString()),
        openings.map((o) => o.lastReadingAt.toISOString()),
        openings.map((o) => o.peakTemperatureCelsius),
        openings.map((o) => o.readingCount),
        openings.map((o) => o.resolvedAt?.toISOString() ?? null)
      ]
    );
    return rows.map(toAlertData);
  }

  /** Ends the rule's open episode, if any (the rule was disabled or its condition changed). */
  async resolveOpen(ruleId: string, at: Date): Promise<void> {
    await this.tenant.em.nativeUpdate(Alert, {ruleId, resolvedAt: null}, {resolvedAt: at, updatedAt: at});
  }

  listForDevice(deviceId: string, filter: AlertFilter): Promise<Alert[]> {
    return this.tenant.em.find(
      Alert,
      {
        deviceId,
        ...(filter.open === undefined ? {} : {resolvedAt: filter.open ? null : {$ne: null}}),
        ...(filter.acknowledged === undefined ? {} : {acknowledgedAt: filter.acknowledged ? {$ne: null} : null})
      },
      {orderBy: {firedAt: "desc", id: "desc"}, limit: MAX_ALERTS_LISTED}
    );
  }

  /** Records the first acknowledgement only; returns the alert, or null when it does not exist in the tenant. */
  async acknowledge(alertId: string, userId: string, at: Date): Promise<Alert | null> {
    const em = this.tenant.em;
    await em.nativeUpdate(Alert, {id: alertId, acknowledgedAt: null}, {acknowledgedAt: at, acknowledgedById: userId, updatedAt: at});
    return em.findOne(Alert, {id: alertId}, {refresh: true});
  }

  private schema(): string {
    return quoteTenantSchema(this.tenant.tenantId);
  }
}

function toAlertData(row: AlertRow): AlertData {
  return {
    id: row.id,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
    ruleId: row.rule_id,
    deviceId: row.device_id,
    readingId: row.reading_id === null ? null : String(row.reading_id),
    temperatureCelsius: row.temperature_celsius,
    firedAt: toDate(row.fired_at),
    lastReadingAt: toDate(row.last_reading_at),
    peakTemperatureCelsius: row.peak_temperature_celsius,
    readingCount: row.reading_count,
    resolvedAt: toDate(row.resolved_at),
    acknowledgedAt: toDate(row.acknowledged_at),
    acknowledgedById: row.acknowledged_by_id
  };
}
