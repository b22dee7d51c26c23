import type {RuleState} from "./alert-episodes.js";
import {type AlertCondition, AlertRuleKind} from "./alert-rule.entity.js";
import {violatesSql} from "./alert-predicate.js";

/*
 * What the readings' ingest statement needs of the alerts tables, as SQL fragments the alerts
 * feature owns and the readings repository composes (readings comes after alerts in the feature
 * order): which rules a reading is checked against, whether readings may change an episode, and
 * the rules' decision state for the transactional path. Hand-written SQL, snapshotted with the
 * statement in src/queries/readings.ingest.sql.
 */

/**
 * The rules a reading is evaluated against, `r` being an alert_rules row: the one place that says
 * which (lockRulesSql too). Archived (deleted) rules are among the disabled ones: the CHECK
 * alert_rules_archived_not_enabled keeps an archived rule from being enabled.
 */
export const evaluatedRuleSql = (r: string) => `${r}."is_enabled"`;

/**
 * The "rules" CTE: the evaluated rules of the devices in `devices` (a relation with "id"), locked
 * FOR SHARE until the statement's transaction ends: concurrent ingests share the lock, a write that
 * changes episodes holds it FOR UPDATE (AlertRepository.lockRules), and a rule change waits for
 * them (and they for it). Instants as epoch milliseconds, like the ingest statement's input. A
 * no_data rule has no condition (so no reading violates it) and no "untilMs": back-filled readings
 * do not change its episodes, only its open one matters (an arrival resolves it).
 */
export const ingestRulesSql = (
  schema: string,
  devices: string
) => `select r."device_id" as "deviceId", r."id" as "ruleId", r."kind", r."condition",
            r."threshold_celsius" as "thresholdCelsius", r."for_seconds" as "forSeconds", r."clear_delta_celsius" as "clearDeltaCelsius",
            r."evaluated_from" as "evaluatedFrom", r."open_alert_id" as "openAlertId",
            date_part('epoch', r."evaluated_from") * 1000 as "fromMs",
            case when r."kind" = '${AlertRuleKind.THRESHOLD}' then date_part('epoch', r."episodes_until") * 1000 end as "untilMs"
       from ${schema}."alert_rules" r
      where r."device_id" in (select dv."id" from ${devices} dv) and ${evaluatedRuleSql("r")}
        for share of r`;

/**
 * The devices whose readings in `input` (with "deviceId", "t" and "ms") may change an alert
 * episode, from the rule rows of `rules` (ingestRulesSql) alone (Migration20261201100000 says
 * why): a rule has an open episode (any reading could extend or resolve it), or among the readings
 * it evaluates (recorded from its evaluated_from on) one violates it (violatesSql, the state
 * machine's predicate) or falls before the end of its latest episode (it could split one). For any
 * other device the episodes are what they were whatever these readings' order: its write needs
 * no transaction.
 */
export const alertChangeSql = (rules: string, input: string) => `select distinct r."deviceId" from ${rules} r
      where r."openAlertId" is not null
         or exists (select 1 from ${input} v
                     where v."deviceId" = r."deviceId"
                       and (r."fromMs" is null or v."ms" >= r."fromMs")
                       and (${violatesSql({condition: `r."condition"`, threshold: `r."thresholdCelsius"`}, `v."t"`)} or v."ms" < r."untilMs"))`;

/**
 * Records the arrival (the statement's now()) of the devices in `arrived` (a relation with
 * "deviceId") that have an evaluated no_data rule in `rules`: the no_data sweep reads
 * devices.last_arrival_at. Devices without one pay nothing. A row lock on the device, not on the
 * rule: the rules are held FOR SHARE by concurrent ingests, and two of them upgrading one shared
 * lock would deadlock. The rows are locked in id order, so that two statements arriving for the
 * same devices (group commit writes many in one) queue instead of deadlocking.
 */
export const recordArrivalSql = (
  schema: string,
  rules: string,
  arrived: string
) => `update ${schema}."devices" d set "last_arrival_at" = now()
       from (select dv."id" from ${schema}."devices" dv
              where dv."id" in (select r."deviceId" from ${rules} r where r."kind" = '${AlertRuleKind.NO_DATA}')
                and dv."id" in (select a."deviceId" from ${arrived} a)
              order by dv."id" for no key update) locked
      where d."id" = locked."id"`;

/**
 * A JSON array of the decision state of `device`'s rules in `rules` (ingestRulesSql) with their
 * open episode: what AlertEpisodeService.apply starts from. Parse it with ruleStatesOf.
 */
export const ruleStatesSql = (schema: string, rules: string, device: string) => `(select coalesce(json_agg(json_build_object(
             'ruleId', r."ruleId", 'kind', r."kind", 'condition', r."condition", 'thresholdCelsius', r."thresholdCelsius",
             'forSeconds', r."forSeconds", 'clearDeltaCelsius', r."clearDeltaCelsius", 'evaluatedFrom', r."evaluatedFrom", 'openAlertId', r."openAlertId",
             'open', (select json_build_object(
                        'id', a."id", 'readingId', a."reading_id"::text, 'temperatureCelsius', a."temperature_celsius",
                        'breachStartedAt', a."breach_started_at", 'firedAt', a."fired_at",
                        'lastReadingAt', a."last_reading_at", 'peakTemperatureCelsius', a."peak_temperature_celsius", 'readingCount', a."reading_count",
                        'acknowledgedAt', a."acknowledged_at", 'acknowledgedById', a."acknowledged_by_id", 'acknowledgementComment', a."acknowledgement_comment")
                      from ${schema}."alerts" a where a."id" = r."openAlertId" and r."kind" = '${AlertRuleKind.THRESHOLD}')
           ) order by r."ruleId"), '[]'::json) from ${rules} r where r."deviceId" = ${device})`;

/** A rule as ruleStatesSql writes it (JSON: instants are text). */
export interface RuleStateJson {
  ruleId: string;
  kind: AlertRuleKind;
  condition: AlertCondition;
  thresholdCelsius: number;
  forSeconds: number;
  clearDeltaCelsius: number;
  evaluatedFrom: string | null;
  openAlertId: string | null;
  open: {
    id: string;
    readingId: string;
    temperatureCelsius: number;
    breachStartedAt: string;
    firedAt: string;
    lastReadingAt: string;
    peakTemperatureCelsius: number;
    readingCount: number;
    acknowledgedAt: string | null;
    acknowledgedById: string | null;
    acknowledgementComment: string | null;
  } | null;
}

export function ruleStatesOf(rows: readonly RuleStateJson[]): RuleState[] {
  return rows.map(({open, ...rule}): RuleState => {
    if (rule.kind === AlertRuleKind.NO_DATA) return {kind: AlertRuleKind.NO_DATA, ruleId: rule.ruleId, openAlertId: rule.openAlertId};
    return {
      kind: AlertRuleKind.THRESHOLD,
      ruleId: rule.ruleId,
      condition: rule.condition,
      thresholdCelsius: rule.thresholdCelsius,
      forSeconds: rule.forSeconds,
      clearDeltaCelsius: rule.clearDeltaCelsius,
      evaluatedFrom: rule.evaluatedFrom === null ? null : new Date(rule.evaluatedFrom),
      open: open && {
        ...open,
        breachStartedAt: new Date(open.breachStartedAt),
        firedAt: new Date(open.firedAt),
        lastReadingAt: new Date(open.lastReadingAt),
        resolvedAt: null,
        acknowledgedAt: open.acknowledgedAt === null ? null : new Date(open.acknowledgedAt)
      }
    };
  });
}
