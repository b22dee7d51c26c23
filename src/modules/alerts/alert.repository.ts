import type {ObjectQuery} from "@mikro-orm/core";
import {Inject, Injectable} from "@tsed/common";
import {queryRows} from "../../platform/db/sql.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import {Alert} from "./alert.entity.js";
import type {AlertQuery, TenantAlertQuery} from "./alert.models.js";
import type {Acknowledgement, Episode, StoredEpisode} from "./alert-episodes.js";
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
  | "severity"
  | "temperatureCelsius"
  | "breachStartedAt"
  | "firedAt"
  | "silentSince"
  | "lastReadingAt"
  | "peakTemperatureCelsius"
  | "readingCount"
  | "resolvedAt"
  | "retractedAt"
  | "acknowledgedAt"
  | "acknowledgedById"
  | "acknowledgementComment"
  | "version"
>;

export const MAX_ALERTS_LISTED = 50;

/** The rule and the device an event names (`rule`, `device`), as the event body shows them, of `alert_rules r` joined to `devices d`. */
export const EVENT_CONTEXT_COLUMNS = `json_build_object(
         'id', r."id", 'kind', r."kind", 'condition', r."condition", 'thresholdCelsius', r."threshold_celsius",
         'forSeconds', r."for_seconds", 'clearDeltaCelsius', r."clear_delta_celsius", 'severity', r."severity",
         'silenceSeconds', r."silence_seconds", 'remindEverySeconds', r."remind_every_seconds", 'isEnabled', r."is_enabled") as "rule",
       json_build_object('id', d."id", 'serialNumber', d."serial_number", 'name', d."name", 'location', d."location") as "device"`;

/** A rule's EVENT_CONTEXT_COLUMNS, by rule id. */
export interface EventContext {
  id: string;
  rule: unknown;
  device: unknown;
}

/** The columns of `alerts a` as a StoredAlert. */
export const STORED_ALERT = `a."id", a."created_at" as "createdAt", a."updated_at" as "updatedAt", a."rule_id" as "ruleId", a."device_id" as "deviceId",
  a."reading_id"::text as "readingId", a."severity", a."temperature_celsius" as "temperatureCelsius", a."breach_started_at" as "breachStartedAt",
  a."fired_at" as "firedAt", a."silent_since" as "silentSince",
  a."last_reading_at" as "lastReadingAt", a."peak_temperature_celsius" as "peakTemperatureCelsius", a."reading_count" as "readingCount",
  a."resolved_at" as "resolvedAt", a."retracted_at" as "retractedAt", a."acknowledged_at" as "acknowledgedAt",
  a."acknowledged_by_id" as "acknowledgedById", a."acknowledgement_comment" as "acknowledgementComment", a."version"`;

/**
 * Locks the device's enabled rules FOR UPDATE, in id order: writes that may change the device's
 * episodes run one at a time, and a lone autocommitted ingest (which reads these rows FOR SHARE)
 * waits for them and then decides on the rows as they committed them. Returns what the events of
 * their episodes name (EVENT_CONTEXT_COLUMNS), which cannot change while they are locked: the
 * transaction announces its changes without reading them again. For that the device row is
 * locked FOR SHARE, after the rules: a change of it (a rename, a key, a rule added) waits for the
 * transaction, and one that committed while this statement waited for the rules is what it returns
 * (Postgres returns a row it locks as last committed). Every statement that locks both takes the
 * rules first, as the ingest statement does (rules FOR SHARE, then the device for its arrival).
 */
export const lockRulesSql = (schema: string) => `select r."id", ${EVENT_CONTEXT_COLUMNS}
  from ${schema}."alert_rules" r join ${schema}."devices" d on d."id" = r."device_id"
 where r."device_id" = :deviceId and ${evaluatedRuleSql("r")}
 order by r."id" for update of r for share of d`;

/**
 * The stored (not retracted) episodes of these threshold rules that end after :after (or are
 * open): the ones a late reading at :after may change.
 */
export const episodesEndingAfterSql = (
  schema: string
) => `select a."id", a."rule_id" as "ruleId", a."reading_id"::text as "readingId", a."temperature_celsius" as "temperatureCelsius",
       a."breach_started_at" as "breachStartedAt", a."fired_at" as "firedAt", a."last_reading_at" as "lastReadingAt",
       a."peak_temperature_celsius" as "peakTemperatureCelsius", a."reading_count" as "readingCount", a."resolved_at" as "resolvedAt",
       a."acknowledged_at" as "acknowledgedAt", a."acknowledged_by_id" as "acknowledgedById", a."acknowledgement_comment" as "acknowledgementComment"
  from ${schema}."alerts" a
 where a."rule_id" = any(:ruleIds::uuid[]) and a."retracted_at" is null and (a."resolved_at" is null or a."resolved_at" > :after)`;

/** Retracts episodes that no derived episode continues (a late reading left their run too short): kept, never deleted. */
export const retractAlertsSql = (
  schema: string
) => `update ${schema}."alerts" as a set "retracted_at" = now(), "updated_at" = now(), "version" = a."version" + 1
  where a."id" = any(:ids::uuid[]) and a."retracted_at" is null
  returning ${STORED_ALERT}`;

/** Resolves open episodes at given instants (a no_data episode, by the device's arrival). */
export const resolveAlertsSql = (
  schema: string
) => `update ${schema}."alerts" as a set "resolved_at" = v."resolved_at", "updated_at" = now(), "version" = a."version" + 1
   from unnest(:ids::uuid[], :resolvedAts::timestamptz[]) as v("id", "resolved_at")
  where a."id" = v."id" and a."resolved_at" is null and a."retracted_at" is null
  returning ${STORED_ALERT}`;

/** Writes derived values into the stored episodes that continue them. */
export const rewriteAlertsSql = (schema: string) => `update ${schema}."alerts" as a set
    "reading_id" = v."reading_id", "temperature_celsius" = v."temperature", "breach_started_at" = v."breach_started_at", "fired_at" = v."fired_at",
    "last_reading_at" = v."last_reading_at", "peak_temperature_celsius" = v."peak", "reading_count" = v."count", "resolved_at" = v."resolved_at",
    "updated_at" = now(), "version" = a."version" + 1
   from unnest(:ids::uuid[], :readingIds::bigint[], :temperatures::float8[], :breachStartedAts::timestamptz[], :firedAts::timestamptz[],
               :lastReadingAts::timestamptz[], :peaks::float8[], :counts::int[], :resolvedAts::timestamptz[])
        as v("id", "reading_id", "temperature", "breach_started_at", "fired_at", "last_reading_at", "peak", "count", "resolved_at")
  where a."id" = v."id"
  returning ${STORED_ALERT}`;

/**
 * Inserts new episodes, with the rule's severity. A rule never has two open episodes: the partial
 * unique index `alerts_one_open_per_rule` refuses a second one (a transaction that hits it is retried).
 */
export const insertAlertsSql = (
  schema: string
) => `insert into ${schema}."alerts" as a ("id", "created_at", "updated_at", "rule_id", "device_id", "reading_id", "severity", "temperature_celsius",
                                    "breach_started_at", "fired_at", "last_reading_at", "peak_temperature_celsius", "reading_count", "resolved_at",
                                    "acknowledged_at", "acknowledged_by_id", "acknowledgement_comment")
  select gen_random_uuid(), now(), now(), v."rule_id", :deviceId::uuid, v."reading_id", r."severity", v."temperature", v."breach_started_at", v."fired_at",
         v."last_reading_at", v."peak", v."count", v."resolved_at", v."acknowledged_at", v."acknowledged_by_id", v."acknowledgement_comment"
    from unnest(:ruleIds::uuid[], :readingIds::bigint[], :temperatures::float8[], :breachStartedAts::timestamptz[], :firedAts::timestamptz[],
                :lastReadingAts::timestamptz[], :peaks::float8[], :counts::int[], :resolvedAts::timestamptz[], :acknowledgedAts::timestamptz[],
                :acknowledgedByIds::uuid[], :acknowledgementComments::text[])
         with ordinality as v("rule_id", "reading_id", "temperature", "breach_started_at", "fired_at", "last_reading_at", "peak", "count", "resolved_at",
                              "acknowledged_at", "acknowledged_by_id", "acknowledgement_comment", "n")
    join ${schema}."alert_rules" r on r."id" = v."rule_id"
   order by v."n"
  returning ${STORED_ALERT}`;

/**
 * The rules' decision state (see Migration20261201100000) from their episodes, after a write
 * changed them: the open episode (neither resolved nor retracted), and the end of the latest one.
 */
export const refreshRuleStateSql = (schema: string) => `update ${schema}."alert_rules" r set
    "open_alert_id" = (select a."id" from ${schema}."alerts" a where a."rule_id" = r."id" and a."resolved_at" is null and a."retracted_at" is null),
    "episodes_until" = (select max(a."resolved_at") from ${schema}."alerts" a where a."rule_id" = r."id" and a."retracted_at" is null)
  where r."id" = any(:ruleIds::uuid[])`;

/**
 * `write` (one of the statements above, returning STORED_ALERT) and refreshRuleStateSql for the
 * rules :touchedRuleIds, in one statement. The refresh cannot read the rows `write` changes from
 * the table (a statement's parts share one snapshot), so it reads them from its RETURNING and the
 * rest of the rules' episodes from the table.
 */
export const refreshingRuleStateSql = (schema: string, write: string) => `with "written" as (
     ${write}
   ), "episodes" as (
     select w."id", w."ruleId", w."resolvedAt", w."retractedAt" from "written" w
     union all
     select a."id", a."rule_id", a."resolved_at", a."retracted_at" from ${schema}."alerts" a
      where a."rule_id" = any(:touchedRuleIds::uuid[]) and a."id" not in (select w."id" from "written" w)
   ), "refreshed" as (
     update ${schema}."alert_rules" r set
       "open_alert_id" = (select e."id" from "episodes" e where e."ruleId" = r."id" and e."resolvedAt" is null and e."retractedAt" is null),
       "episodes_until" = (select max(e."resolvedAt") from "episodes" e where e."ruleId" = r."id" and e."retractedAt" is null)
     where r."id" = any(:touchedRuleIds::uuid[])
   )
   select * from "written"`;

/**
 * Ends the rule's open episode at :at (the rule was disabled or its condition changed), and, when
 * :restart, evaluates readings only from :at on (the rule was enabled or its condition changed).
 */
export const endEpisodesSql = (schema: string) => `with "resolved" as (
     update ${schema}."alerts" a set "resolved_at" = :at, "updated_at" = :at, "version" = a."version" + 1
      where a."rule_id" = :ruleId and a."resolved_at" is null and a."retracted_at" is null
      returning ${STORED_ALERT}
   ), "rule" as (
     update ${schema}."alert_rules" r set
       "open_alert_id" = null,
       "episodes_until" = greatest(r."episodes_until", (select max("resolvedAt") from "resolved")),
       "evaluated_from" = case when :restart::boolean then :at else r."evaluated_from" end
     where r."id" = :ruleId
     returning r."evaluated_from" as "evaluatedFrom"
   )
   select (select "evaluatedFrom" from "rule") as "evaluatedFrom", (select coalesce(json_agg(rs), '[]'::json) from "resolved" rs) as "resolved"`;

/** Values of the episode columns as the statements' parallel arrays. */
function episodeColumns(episodes: readonly Episode[]) {
  return {
    readingIds: episodes.map((e) => e.readingId),
    temperatures: episodes.map((e) => e.temperatureCelsius),
    breachStartedAts: episodes.map((e) => e.breachStartedAt),
    firedAts: episodes.map((e) => e.firedAt),
    lastReadingAts: episodes.map((e) => e.lastReadingAt),
    peaks: episodes.map((e) => e.peakTemperatureCelsius),
    counts: episodes.map((e) => e.readingCount),
    resolvedAts: episodes.map((e) => e.resolvedAt)
  };
}

/** A stored episode of a rule, as episodesEndingAfterSql reads it. */
export type RuleEpisode = StoredEpisode & {ruleId: string};

/**
 * What AlertRepository.write does: ids to retract, open episodes to resolve (no_data), stored
 * episodes to rewrite, new episodes (with the acknowledgement they inherit).
 */
export interface EpisodeWrites {
  retract: string[];
  resolve: {id: string; resolvedAt: Date}[];
  update: (Episode & {id: string})[];
  insert: (Episode & Acknowledgement & {ruleId: string})[];
}

/** The rows AlertRepository.write changed, as stored afterwards, by what it did to them. */
export interface EpisodesWritten {
  retracted: StoredAlert[];
  resolved: StoredAlert[];
  updated: StoredAlert[];
  inserted: StoredAlert[];
}

/** A StoredAlert as json_agg writes it: instants are text. */
export type StoredAlertJson = {[K in keyof StoredAlert]: StoredAlert[K] extends Date | null | undefined ? string | null : StoredAlert[K]};

const INSTANTS = [
  "createdAt",
  "updatedAt",
  "breachStartedAt",
  "firedAt",
  "silentSince",
  "lastReadingAt",
  "resolvedAt",
  "retractedAt",
  "acknowledgedAt"
] as const;

/** A StoredAlert from its JSON form. */
export function storedAlertOf(json: StoredAlertJson): StoredAlert {
  const alert = {...json} as unknown as Record<string, unknown>;
  for (const key of INSTANTS) {
    const value = json[key];
    alert[key] = value === null || value === undefined ? null : new Date(value);
  }
  return alert as unknown as StoredAlert;
}

@Injectable()
export class AlertRepository {
  @Inject()
  private tenant!: TenantContext;

  /** Locks the device's enabled rules (lockRulesSql); returns their events' context. */
  lockRules(deviceId: string): Promise<EventContext[]> {
    return queryRows<EventContext>(this.tenant.em, lockRulesSql(this.schema()), {deviceId});
  }

  episodesEndingAfter(ruleIds: readonly string[], after: Date): Promise<RuleEpisode[]> {
    return queryRows(this.tenant.em, episodesEndingAfterSql(this.schema()), {ruleIds, after});
  }

  /**
   * Writes episode changes (episodeChanges) of the device's rules and refreshes those rules'
   * decision state. Unique indexes are checked row by row, so the order matters for
   * `alerts_one_open_per_rule`: retractions and resolutions, then episodes this write resolves,
   * then the others, then new ones; an episode is never open twice on the way.
   */
  async write(deviceId: string, ruleIds: readonly string[], changes: EpisodeWrites): Promise<EpisodesWritten> {
    const em = this.tenant.em;
    const schema = this.schema();
    const written: EpisodesWritten = {retracted: [], resolved: [], updated: [], inserted: []};
    const steps: {sql: string; bindings: Record<string, unknown>; keep: (rows: StoredAlert[]) => void}[] = [];
    if (changes.retract.length)
      steps.push({sql: retractAlertsSql(schema), bindings: {ids: changes.retract}, keep: (rows) => (written.retracted = rows)});
    if (changes.resolve.length) {
      steps.push({
        sql: resolveAlertsSql(schema),
        bindings: {ids: changes.resolve.map((e) => e.id), resolvedAts: changes.resolve.map((e) => e.resolvedAt)},
        keep: (rows) => (written.resolved = rows)
      });
    }
    for (const group of [changes.update.filter((e) => e.resolvedAt !== null), changes.update.filter((e) => e.resolvedAt === null)]) {
      if (group.length) {
        steps.push({
          sql: rewriteAlertsSql(schema),
          bindings: {ids: group.map((e) => e.id), ...episodeColumns(group)},
          keep: (rows) => written.updated.push(...rows)
        });
      }
    }
    if (changes.insert.length) {
      steps.push({
        sql: insertAlertsSql(schema),
        bindings: {
          deviceId,
          ruleIds: changes.insert.map((e) => e.ruleId),
          ...episodeColumns(changes.insert),
          acknowledgedAts: changes.insert.map((e) => e.acknowledgedAt),
          acknowledgedByIds: changes.insert.map((e) => e.acknowledgedById),
          acknowledgementComments: changes.insert.map((e) => e.acknowledgementComment)
        },
        keep: (rows) => (written.inserted = rows)
      });
    }
    const last = steps.pop();
    for (const step of steps) step.keep(await queryRows<StoredAlert>(em, step.sql, step.bindings));
    // The last write refreshes the rules' state in its own statement: one round trip fewer in
    // every transaction that changes an episode.
    if (last)
      last.keep(await queryRows<StoredAlert>(em, refreshingRuleStateSql(schema, last.sql), {...last.bindings, touchedRuleIds: ruleIds}));
    else await queryRows(em, refreshRuleStateSql(schema), {ruleIds});
    return written;
  }

  /** endEpisodesSql; returns the rule's evaluatedFrom afterwards and the episode it resolved, if any. */
  async endEpisodes(ruleId: string, at: Date, restart: boolean): Promise<{evaluatedFrom: Date | null; resolved: StoredAlert[]}> {
    const [row] = await queryRows<{evaluatedFrom: Date | null; resolved: StoredAlertJson[]}>(
      this.tenant.em,
      endEpisodesSql(this.schema()),
      {
        ruleId,
        at,
        restart
      }
    );
    return {evaluatedFrom: row!.evaluatedFrom === null ? null : new Date(row!.evaluatedFrom), resolved: row!.resolved.map(storedAlertOf)};
  }

  listForDevice(deviceId: string, query: AlertQuery): Promise<Alert[]> {
    return this.tenant.em.find(
      Alert,
      {deviceId, ...alertFilter(query)},
      {orderBy: {firedAt: "desc", id: "desc"}, limit: MAX_ALERTS_LISTED}
    );
  }

  /** The tenant's alerts across devices, newest first (the alerts_fired_at_index order), one page, and how many match. */
  listForTenant(query: TenantAlertQuery): Promise<[Alert[], number]> {
    return this.tenant.em.findAndCount(
      Alert,
      {...alertFilter(query), ...(query.severity === undefined ? {} : {severity: query.severity})},
      {orderBy: {firedAt: "desc", id: "desc"}, limit: query.pageSize, offset: (query.page - 1) * query.pageSize}
    );
  }

  /**
   * Records the first acknowledgement only (who, when, the comment), bumping the alert's version;
   * returns the alert as it now stands and whether this call acknowledged it, or null when it does
   * not exist in the tenant.
   */
  async acknowledge(
    alertId: string,
    userId: string,
    at: Date,
    comment: string | null
  ): Promise<{alert: StoredAlert; acknowledged: boolean} | null> {
    const em = this.tenant.em;
    const schema = this.schema();
    const [acknowledged] = await queryRows<StoredAlert>(em, acknowledgeSql(schema), {alertId, userId, at, comment});
    if (acknowledged) return {alert: acknowledged, acknowledged: true};
    const [alert] = await queryRows<StoredAlert>(em, `select ${STORED_ALERT} from ${schema}."alerts" a where a."id" = :alertId`, {alertId});
    return alert ? {alert, acknowledged: false} : null;
  }

  private schema(): string {
    return quoteTenantSchema(this.tenant.tenantId);
  }
}

/**
 * The `open` and `acknowledged` filters of alert lists: open is neither resolved nor retracted (a
 * retracted alert should not have fired, so it is not open); `open=false` is resolved or retracted.
 */
function alertFilter(query: AlertQuery): ObjectQuery<Alert> {
  return {
    ...(query.open === undefined
      ? {}
      : query.open
        ? {resolvedAt: null, retractedAt: null}
        : {$or: [{resolvedAt: {$ne: null}}, {retractedAt: {$ne: null}}]}),
    ...(query.acknowledged === undefined ? {} : {acknowledgedAt: query.acknowledged ? {$ne: null} : null})
  };
}

/** The first acknowledgement of an alert; no row when it was acknowledged already (or does not exist). */
const acknowledgeSql = (schema: string) => `update ${schema}."alerts" as a
    set "acknowledged_at" = :at, "acknowledged_by_id" = :userId, "acknowledgement_comment" = :comment, "updated_at" = :at, "version" = a."version" + 1
  where a."id" = :alertId and a."acknowledged_at" is null
  returning ${STORED_ALERT}`;
