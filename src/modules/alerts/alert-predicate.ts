import {AlertCondition} from "./alert-rule.entity.js";

/*
 * "Does this reading violate this rule?" — the one definition, rendered twice: as TypeScript for
 * the episode state machine (alert-episodes.ts) and as SQL for the ingest statement's decision
 * whether a write may change an episode (alertChangeSql) and for finding where a run of violating
 * readings began. alert-predicate.spec.ts checks on real Postgres that both renderings agree.
 * The clearing side (hysteresis) needs no SQL: only a rule with an open episode looks at it, and
 * such a rule always takes the transactional path.
 */

/** What a rule compares a reading's temperature with. */
export interface Threshold {
  condition: AlertCondition;
  thresholdCelsius: number;
}

/** A threshold rule with its hysteresis: an open episode resolves at the first reading `clearDeltaCelsius` back inside the threshold. */
export interface ThresholdWithClearing extends Threshold {
  clearDeltaCelsius: number;
}

/** The comparison under which a temperature violates a rule, per condition: `above` when t > T, `below` when t < T. */
const VIOLATING_COMPARISON = {[AlertCondition.ABOVE]: ">", [AlertCondition.BELOW]: "<"} as const satisfies Record<
  AlertCondition,
  ">" | "<"
>;

const COMPARE = {">": (t: number, limit: number) => t > limit, "<": (t: number, limit: number) => t < limit};

/**
 * `beyond(t, limit)`: whether t lies on the violating side of `limit` under a condition — of the
 * threshold (a violation), or of an episode's peak (a new peak). Picked once per rule, called per
 * reading (the state machine's hot loop).
 */
export function beyondFor(condition: AlertCondition): (temperatureCelsius: number, limit: number) => boolean {
  // A condition outside the enum (a row written by a newer version, say) violates nothing, in SQL too.
  return COMPARE[VIOLATING_COMPARISON[condition]] ?? (() => false);
}

/**
 * `clears(t)`: whether a reading at t resolves an open episode: `above T` at t ≤ T − δ, `below T`
 * at t ≥ T + δ. With δ = 0 that is exactly "does not violate". A reading that neither violates nor
 * clears lies in the hysteresis band: it keeps an open episode open and unchanged.
 */
export function clearsFor(rule: ThresholdWithClearing): (temperatureCelsius: number) => boolean {
  const {condition, thresholdCelsius: limit, clearDeltaCelsius: delta} = rule;
  if (condition === AlertCondition.ABOVE) return (t) => t <= limit - delta;
  if (condition === AlertCondition.BELOW) return (t) => t >= limit + delta;
  return () => true;
}

export function violates(rule: Threshold, temperatureCelsius: number): boolean {
  return beyondFor(rule.condition)(temperatureCelsius, rule.thresholdCelsius);
}

/**
 * The same test in SQL: true when `temperature` violates a rule with `condition` and `threshold`
 * (SQL expressions: columns or parameters). Unknown conditions violate nothing.
 */
export function violatesSql(rule: {condition: string; threshold: string}, temperature: string): string {
  const cases = Object.entries(VIOLATING_COMPARISON).map(
    ([condition, op]) => `when '${condition}' then ${temperature} ${op} ${rule.threshold}`
  );
  return `coalesce(case ${rule.condition} ${cases.join(" ")} end, false)`;
}
