import {Inject, Injectable} from "@tsed/common";
import {queryRows} from "../../platform/db/sql.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import {Alert} from "./alert.entity.js";
import type {AlertQuery} from "./alert.models.js";
import type {Episode, StoredEpisode} from "./alert-episodes.js";
import {evaluatedRuleSql} from "./alert-rules-at-ingest.js";

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

/**
 * Locks the device's enabled rules FOR UPDATE, in id order: writes that may change the device's
 * episodes run one at a time, and a lone autocommitted ingest (which reads these rows FOR SHARE)
 * waits for them and then decides on the rows as they committed them.
 */
export const lockRulesSql = (schema: string) =>
  `select r."id" from ${schema}."alert_rules" r where r."device_id" = :deviceId and ${evaluatedRuleSql("r")} order by r."id" for update`;

/** The stored episodes of these rules that end after :after (or are open): the ones a late reading at :after may change. */
export const episodesEndingAfterSql = (
  schema: string
) => `select a."id", a."rule_id" as "ruleId", a."reading_id"::text as "readingId", a."temperature_celsius" as "temperatureCelsius",
       a."fired_at" as "firedAt", a."last_reading_at" as "lastReadingAt", a."peak_temperature_celsius" as "peakTemperatureCelsius",
       a."reading_count" as "readingCount", a."resolved_at" as "resolvedAt", a."acknowledged_at" as "acknowledgedAt", a."acknowledged_by_id" as "acknowledgedById"
  from ${schema}."alerts" a
 where a."rule_id" = any(:ruleIds::uuid[]) and (a."resolved_at" is null or a."resolved_at" > :after)`;

/** Removes episodes that no derived episode continues. */
export const removeAlertsSql = (schema: string) => `delete from ${schema}."alerts" where "id" = any(:ids::uuid[])`;

/** Writes derived values into the stored episodes that continue them. */
export const rewriteAlertsSql = (schema: string) => `update ${schema}."alerts" as a set
    "reading_id" = v."reading_id", "temperature_celsius" = v."temperature", "fired_at" = v."fired_at", "last_reading_at" = v."last_reading_at",
    "peak_temperature_celsius" = v."peak", "reading_count" = v."count", "resolved_at" = v."resolved_at", "updated_at" = now()
   from unnest(:ids::uuid[], :readingIds::bigint[], :temperatures::float8[], :firedAts::timestamptz[], :lastReadingAts::timestamptz[], :peaks::float8[], :counts::int[], :resolvedAts::timestamptz[])
        as v("id", "reading_id", "temperature", "fired_at", "last_reading_at", "peak", "count", "resolved_at")
  where a."id" = v."id"
  returning ${STORED_ALERT}`;

/**
 * Inserts new episodes. A rule never has two open episodes: the partial unique index
 * `alerts_one_open_per_rule` refuses a second one (a transaction that hits it is retried).
 */
export const insertAlertsSql = (
  schema: string
) => `insert into ${schema}."alerts" as a ("id", "created_at", "updated_at", "rule_id", "device_id", "reading_id", "temperature_celsius",
                                    "fired_at", "last_reading_at", "peak_temperature_celsius", "reading_count", "resolved_at", "acknowledged_at", "acknowledged_by_id")
  select gen_random_uuid(), now(), now(), v."rule_id", :deviceId::uuid, v."reading_id", v."temperature", v."fired_at", v."last_reading_at", v."peak", v."count", v."resolved_at",
         v."acknowledged_at", v."acknowledged_by_id"
    from unnest(:ruleIds::uuid[], :readingIds::bigint[], :temperatures::float8[], :firedAts::timestamptz[], :lastReadingAts::timestamptz[], :peaks::float8[], :counts::int[],
                :resolvedAts::timestamptz[], :acknowledgedAts::timestamptz[], :acknowledgedByIds::uuid[])
         as v("rule_id", "reading_id", "temperature", "fired_at", "last_reading_at", "peak", "count", "resolved_at", "acknowledged_at", "acknowledged_by_id")
  returning ${STORED_ALERT}`;

/** The rules' decision state (see Migration20261201100000) from their episodes, after a write changed them. */
export const refreshRuleStateSql = (schema: string) => `update ${schema}."alert_rules" r set
    "open_alert_id" = (select a."id" from ${schema}."alerts" a where a."rule_id" = r."id" and a."resolved_at" is null),
    "episodes_until" = (select max(a."resolved_at") from ${schema}."alerts" a where a."rule_id" = r."id")
  where r."id" = any(:ruleIds::uuid[])`;

/**
 * Ends the rule's open episode at :at (the rule was disabled or its condition changed), and, when
 * :restart, evaluates readings only from :at on (the rule was enabled or its condition changed).
 */
export const endEpisodesSql = (schema: string) => `with "resolved" as (
     update ${schema}."alerts" set "resolved_at" = :at, "updated_at" = :at where "rule_id" = :ruleId and "resolved_at" is null returning "resolved_at"
   )
   update ${schema}."alert_rules" r set
     "open_alert_id" = null,
     "episodes_until" = greatest(r."episodes_until", (select max("resolved_at") from "resolved")),
     "evaluated_from" = case when :restart::boolean then :at else r."evaluated_from" end
   where r."id" = :ruleId
   returning r."evaluated_from" as "evaluatedFrom"`;

/** Values of the episode columns as the statements' parallel arrays. */
function episodeColumns(episodes: readonly Episode[]) {
  return {
    readingIds: episodes.map((e) => e.readingId),
    temperatures: episodes.map((e) => e.temperatureCelsius),
    firedAts: episodes.map((e) => e.firedAt),
    lastReadingAts: episodes.map((e) => e.lastReadingAt),
    peaks: episodes.map((e) => e.peakTemperatureCelsius),
    counts: episodes.map((e) => e.readingCount),
    resolvedAts: episodes.map((e) => e.resolvedAt)
  };
}

/** A stored episode of a rule, as episodesEndingAfterSql reads it. */
export type RuleEpisode = StoredEpisode & {ruleId: string};

/** What AlertRepository.write does: ids to remove, stored episodes to rewrite, new episodes (with the acknowledgement they inherit). */
export interface EpisodeWrites {
  remove: string[];
  update: (Episode & {id: string})[];
  insert: (Episode & {ruleId: string; acknowledgedAt: Date | null; acknowledgedById: string | null})[];
}

@Injectable()
export class AlertRepository {
  @Inject()
  private tenant!: TenantContext;

  /** Locks the device's enabled rules (lockRulesSql); returns their ids. */
  async lockRules(deviceId: string): Promise<string[]> {
    return (await queryRows<{id: string}>(this.tenant.em, lockRulesSql(this.schema()), {deviceId})).map((row) => row.id);
  }

  episodesEndingAfter(ruleIds: readonly string[], after: Date): Promise<RuleEpisode[]> {
    return queryRows(this.tenant.em, episodesEndingAfterSql(this.schema()), {ruleIds, after});
  }

  /**
   * Writes episode changes (episodeChanges) of the device's rules and refreshes those rules'
   * decision state. Unique indexes are checked row by row, so the order matters for
   * `alerts_one_open_per_rule`: removals, then episodes this write resolves, then the others, then
   * new ones; an episode is never open twice on the way.
   * @returns the episodes rewritten and inserted, as stored
   */
  async write(deviceId: string, ruleIds: readonly string[], changes: EpisodeWrites): Promise<StoredAlert[]> {
    const em = this.tenant.em;
    const schema = this.schema();
    const written: StoredAlert[] = [];
    if (changes.remove.length) await queryRows(em, removeAlertsSql(schema), {ids: changes.remove});
    for (const group of [changes.update.filter((e) => e.resolvedAt !== null), changes.update.filter((e) => e.resolvedAt === null)]) {
      if (group.length)
        written.push(
          ...(await queryRows<StoredAlert>(em, rewriteAlertsSql(schema), {ids: group.map((e) => e.id), ...episodeColumns(group)}))
        );
    }
    if (changes.insert.length) {
      written.push(
        ...(await queryRows<StoredAlert>(em, insertAlertsSql(schema), {
          deviceId,
          ruleIds: changes.insert.map((e) => e.ruleId),
          ...episodeColumns(changes.insert),
          acknowledgedAts: changes.insert.map((e) => e.acknowledgedAt),
          acknowledgedByIds: changes.insert.map((e) => e.acknowledgedById)
        }))
      );
    }
    await queryRows(em, refreshRuleStateSql(schema), {ruleIds});
    return written;
  }

  /** endEpisodesSql; returns the rule's evaluatedFrom afterwards. */
  async endEpisodes(ruleId: string, at: Date, restart: boolean): Promise<Date | null> {
    const [row] = await queryRows<{evaluatedFrom: Date | null}>(this.tenant.em, endEpisodesSql(this.schema()), {ruleId, at, restart});
    return row!.evaluatedFrom;
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
