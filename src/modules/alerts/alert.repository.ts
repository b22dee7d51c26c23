import {Inject, Injectable} from "@tsed/di";
import {queryRows} from "../../platform/db/sql.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import {Alert} from "./alert.entity.js";
import type {AlertQuery} from "./alert.models.js";
import type {AlertAdvance, AlertOpening, StoredEpisode} from "./alert-episodes.js";

/** An alert as stored and as the API returns it (the Alert model), as a plain object. */
export type StoredAlert = Pick<
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

export const MAX_ALERTS_LISTED = 50;

/** The columns of `alerts a` as a StoredAlert. */
const STORED_ALERT = `a."id", a."created_at" as "createdAt", a."updated_at" as "updatedAt", a."rule_id" as "ruleId", a."device_id" as "deviceId",
  a."reading_id"::text as "readingId", a."temperature_celsius" as "temperatureCelsius", a."fired_at" as "firedAt",
  a."last_reading_at" as "lastReadingAt", a."peak_temperature_celsius" as "peakTemperatureCelsius", a."reading_count" as "readingCount",
  a."resolved_at" as "resolvedAt", a."acknowledged_at" as "acknowledgedAt", a."acknowledged_by_id" as "acknowledgedById"`;

/** Resolved episodes of these rules whose span [firedAt, resolvedAt) overlaps [:from, :to]. */
export const resolvedEpisodesSql = (schema: string) => `select a."id", a."rule_id" as "ruleId", a."fired_at" as "firedAt", a."last_reading_at" as "lastReadingAt", a."resolved_at" as "resolvedAt"
   from ${schema}."alerts" a
  where a."device_id" = :deviceId and a."rule_id" = any(:ruleIds::uuid[]) and a."resolved_at" is not null and a."fired_at" <= :to and a."resolved_at" > :from
  order by a."fired_at"`;

/**
 * Adds readings to stored alerts and resolves open ones, all in one UPDATE. Counters and extremes
 * are applied relative to the row as it is at write time (count + n, greatest/least), so
 * concurrent writers that both extend an episode lose nothing. Each row is only touched if it is
 * still in the state the plan assumed — open (and, when resolving, not reached by a newer
 * violation meanwhile), or already resolved for a past episode; the caller compares the returned
 * rows with what it asked for.
 */
export const advanceAlertsSql = (schema: string) => `update ${schema}."alerts" as a set
    "reading_count" = a."reading_count" + v."added",
    "peak_temperature_celsius" = case when v."condition" = 'above' then greatest(a."peak_temperature_celsius", v."peak")
                                      else least(a."peak_temperature_celsius", v."peak") end,
    "last_reading_at" = greatest(a."last_reading_at", v."last_reading_at"),
    "resolved_at" = coalesce(a."resolved_at", v."resolved_at"),
    "updated_at" = now()
   from unnest(:ids::uuid[], :added::int[], :peaks::float8[], :lastReadingAts::timestamptz[], :resolvedAts::timestamptz[], :conditions::text[], :wereResolved::boolean[])
        as v("id", "added", "peak", "last_reading_at", "resolved_at", "condition", "was_resolved")
  where a."id" = v."id"
    and case when v."was_resolved" then a."resolved_at" is not null
             else a."resolved_at" is null and (v."resolved_at" is null or a."last_reading_at" < v."resolved_at") end
  returning ${STORED_ALERT}`;

/**
 * Inserts the episodes a write opened, in one statement. Two writers opening an episode for the
 * same rule at once collide on the partial unique index `alerts_one_open_per_rule`: the later one
 * fails with a unique violation and its transaction is retried.
 */
export const openAlertsSql = (schema: string) => `insert into ${schema}."alerts" as a ("id", "created_at", "updated_at", "rule_id", "device_id", "reading_id", "temperature_celsius",
                                    "fired_at", "last_reading_at", "peak_temperature_celsius", "reading_count", "resolved_at")
  select gen_random_uuid(), now(), now(), v."rule_id", :deviceId::uuid, v."reading_id", v."temperature", v."fired_at", v."last_reading_at", v."peak", v."count", v."resolved_at"
    from unnest(:ruleIds::uuid[], :readingIds::bigint[], :temperatures::float8[], :firedAts::timestamptz[], :lastReadingAts::timestamptz[], :peaks::float8[], :counts::int[], :resolvedAts::timestamptz[])
         as v("rule_id", "reading_id", "temperature", "fired_at", "last_reading_at", "peak", "count", "resolved_at")
  returning ${STORED_ALERT}`;

@Injectable()
export class AlertRepository {
  @Inject()
  private tenant!: TenantContext;

  findResolvedEpisodes(deviceId: string, ruleIds: readonly string[], from: Date, to: Date): Promise<(StoredEpisode & {ruleId: string})[]> {
    return queryRows(this.tenant.em, resolvedEpisodesSql(this.schema()), {deviceId, ruleIds, from, to});
  }

  advance(advances: readonly AlertAdvance[]): Promise<StoredAlert[]> {
    if (advances.length === 0) return Promise.resolve([]);
    return queryRows<StoredAlert>(this.tenant.em, advanceAlertsSql(this.schema()), {
      ids: advances.map((a) => a.alertId),
      added: advances.map((a) => a.addedReadings),
      peaks: advances.map((a) => a.peakTemperatureCelsius),
      lastReadingAts: advances.map((a) => a.lastReadingAt),
      resolvedAts: advances.map((a) => a.resolvedAt),
      conditions: advances.map((a) => a.condition),
      wereResolved: advances.map((a) => a.wasResolved)
    });
  }

  open(deviceId: string, openings: readonly AlertOpening[]): Promise<StoredAlert[]> {
    if (openings.length === 0) return Promise.resolve([]);
    return queryRows<StoredAlert>(this.tenant.em, openAlertsSql(this.schema()), {
      deviceId,
      ruleIds: openings.map((o) => o.ruleId),
      readingIds: openings.map((o) => o.readingId),
      temperatures: openings.map((o) => o.temperatureCelsius),
      firedAts: openings.map((o) => o.firedAt),
      lastReadingAts: openings.map((o) => o.lastReadingAt),
      peaks: openings.map((o) => o.peakTemperatureCelsius),
      counts: openings.map((o) => o.readingCount),
      resolvedAts: openings.map((o) => o.resolvedAt)
    });
  }

  /** Ends the rule's open episode, if any (the rule was disabled or its condition changed). */
  async resolveOpen(ruleId: string, at: Date): Promise<void> {
    await this.tenant.em.nativeUpdate(Alert, {ruleId, resolvedAt: null}, {resolvedAt: at, updatedAt: at});
  }

  listForDevice(deviceId: string, query: AlertQuery): Promise<Alert[]> {
    return this.tenant.em.find(
      Alert,
      {
        deviceId,
        ...(query.open === undefined ? {} : {resolvedAt: query.open ? null : {$ne: null}}),
        ...(query.acknowledged === undefined ? {} : {acknowledgedAt: query.acknowledged ? {$ne: null} : null})
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
