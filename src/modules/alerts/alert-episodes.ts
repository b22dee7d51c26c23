import {AlertRuleKind} from "./alert-rule.entity.js";
import {beyondFor, clearsFor, type ThresholdWithClearing} from "./alert-predicate.js";

/*
 * Alert episodes as a pure function of a device's readings: the one place where episode semantics
 * live (docs/api.md, "Alerts"). No I/O here; AlertEpisodeService loads what it needs, runs this,
 * and writes the difference; the backtest runs the same functions over stored readings.
 *
 * Threshold rules, over the readings in recordedAt order (whether a reading violates or clears is
 * alert-predicate.ts's):
 * - a run is a maximal sequence of consecutive violating readings; any other reading ends it;
 * - a run fires an episode at its first reading r_k with r_k − r_0 ≥ forSeconds: breachStartedAt
 *   is r_0's time, firedAt, readingId and temperature are r_k's, peak and readingCount cover the
 *   run from r_0; a shorter run fires nothing;
 * - an open episode is extended by violating readings (readingCount, peak, lastReadingAt), kept
 *   as it is by readings in the hysteresis band, resolved by the first clearing reading
 *   (resolvedAt = its recordedAt); a violating reading after that starts a new run.
 * With forSeconds 0 and clearDeltaCelsius 0 every violating reading outside an episode opens one
 * and every other reading resolves it.
 *
 * no_data rules, over the device's arrivals (server time): an episode is every interval longer
 * than silenceSeconds in which nothing arrived (deriveSilences).
 */

export type {Threshold} from "./alert-predicate.js";

/** What the state machine needs of a stored reading. */
export interface EpisodeReading {
  id: string;
  temperatureCelsius: number;
  recordedAt: Date;
}

/** A threshold rule as the state machine reads it. */
export interface AlarmRule extends ThresholdWithClearing {
  forSeconds: number;
}

/** One threshold episode, as derived here or as stored (an alert row). */
export interface Episode {
  /** The reading with which the run had lasted forSeconds (the one that fired it). */
  readingId: string;
  /** Its temperature. */
  temperatureCelsius: number;
  /** recordedAt of the run's first reading. */
  breachStartedAt: Date;
  /** recordedAt of the reading that fired it. */
  firedAt: Date;
  lastReadingAt: Date;
  peakTemperatureCelsius: number;
  readingCount: number;
  resolvedAt: Date | null;
}

/** An evaluated threshold rule of a device and its decision state, as the ingest statement reads them (ruleStatesSql). */
export interface ThresholdRuleState extends AlarmRule {
  kind: AlertRuleKind.THRESHOLD;
  ruleId: string;
  /** Readings recorded before this are not evaluated (null: none is excluded). */
  evaluatedFrom: Date | null;
  open: StoredEpisode | null;
}

/** An evaluated no_data rule: only its open episode matters to a write (the write is an arrival, which resolves it). */
export interface NoDataRuleState {
  kind: AlertRuleKind.NO_DATA;
  ruleId: string;
  openAlertId: string | null;
}

export type RuleState = ThresholdRuleState | NoDataRuleState;

/** The device's rules and its newest reading before the write (null: none yet). */
export interface EpisodeState {
  rules: RuleState[];
  watermark: Date | null;
}

/**
 * The episodes of `readings` under `rule`, continuing `open` (an episode still open before the
 * first of them, or null when none is). With no open episode the readings must start where the
 * device was idle: after a reading that did not violate, or with the first reading evaluated.
 *
 * @param readings sorted by recordedAt, all after `open`'s last reading
 * @returns the episodes these readings touched, oldest first: `open` carried on (a new object) when
 *   given, then every episode they fired. An untouched `open` comes back unchanged.
 */
export function deriveEpisodes(rule: AlarmRule, readings: readonly EpisodeReading[], open: Episode | null = null): Episode[] {
  let current = open && open.resolvedAt === null ? {...open} : null;
  const episodes = current ? [current] : [];
  const beyond = beyondFor(rule.condition);
  const clears = clearsFor(rule);
  const forMs = rule.forSeconds * 1000;
  // The run of violating readings not (yet) long enough to fire: its first reading, peak and length so far.
  let run: {first: Date; peak: number; count: number} | null = null;
  for (const reading of readings) {
    const t = reading.temperatureCelsius;
    if (beyond(t, rule.thresholdCelsius)) {
      if (current) {
        current.readingCount++;
        if (beyond(t, current.peakTemperatureCelsius)) current.peakTemperatureCelsius = t;
        current.lastReadingAt = reading.recordedAt;
        continue;
      }
      if (run) {
        run.count++;
        if (beyond(t, run.peak)) run.peak = t;
      } else {
        run = {first: reading.recordedAt, peak: t, count: 1};
      }
      if (reading.recordedAt.getTime() - run.first.getTime() >= forMs) {
        current = {
          readingId: reading.id,
          temperatureCelsius: t,
          breachStartedAt: run.first,
          firedAt: reading.recordedAt,
          lastReadingAt: reading.recordedAt,
          peakTemperatureCelsius: run.peak,
          readingCount: run.count,
          resolvedAt: null
        };
        episodes.push(current);
        run = null;
      }
    } else {
      run = null;
      if (current && clears(t)) {
        current.resolvedAt = reading.recordedAt;
        current = null;
      }
    }
  }
  return episodes;
}

/** One no_data episode: the device silent from silentSince, firing silenceSeconds later, until its next arrival. */
export interface SilenceEpisode {
  silentSince: Date;
  firedAt: Date;
  resolvedAt: Date | null;
}

/**
 * The no_data episodes of a device watched from `from` until `until`: every interval longer than
 * `silenceSeconds` with no arrival, starting at the last arrival before it (or `from`). One still
 * running at `until` is open.
 * @param arrivals the server times at which readings of the device arrived, any order
 */
export function deriveSilences(silenceSeconds: number, arrivals: readonly Date[], from: Date, until: Date): SilenceEpisode[] {
  const silenceMs = silenceSeconds * 1000;
  const episodes: SilenceEpisode[] = [];
  let last = from.getTime();
  const times = arrivals.map((a) => a.getTime()).sort((a, b) => a - b);
  for (const at of times) {
    if (at > until.getTime()) break;
    if (at - last > silenceMs) episodes.push({silentSince: new Date(last), firedAt: new Date(last + silenceMs), resolvedAt: new Date(at)});
    last = Math.max(last, at);
  }
  if (until.getTime() - last > silenceMs)
    episodes.push({silentSince: new Date(last), firedAt: new Date(last + silenceMs), resolvedAt: null});
  return episodes;
}

/** Sorts readings by recordedAt (a copy). Instants compare as numbers: Date relational operators go through valueOf, ~15 times slower. */
export function inRecordedOrder<T extends {recordedAt: Date}>(readings: readonly T[]): T[] {
  return [...readings].sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());
}

/** Whether two episodes cover some common stretch of time: [breachStartedAt, resolvedAt), open ones to the end. */
function overlaps(a: Episode, b: Episode): boolean {
  const end = (e: Episode) => (e.resolvedAt === null ? Number.POSITIVE_INFINITY : e.resolvedAt.getTime());
  return a.breachStartedAt.getTime() < end(b) && b.breachStartedAt.getTime() < end(a);
}

/** The acknowledgement of an alert, which a part split off an episode inherits. */
export interface Acknowledgement {
  acknowledgedAt: Date | null;
  acknowledgedById: string | null;
  acknowledgementComment: string | null;
}

/** A stored episode: an alert row (neither retracted nor of a no_data rule) with its id and acknowledgement. */
export interface StoredEpisode extends Episode, Acknowledgement {
  id: string;
}

export interface EpisodeChanges<S extends StoredEpisode> {
  /** Stored episodes that keep their id (and acknowledgement) and take the derived values. */
  update: (Episode & {id: string})[];
  /** Derived episodes with no stored counterpart; `acknowledgedFrom` is the stored episode they split from, if any. */
  insert: (Episode & {acknowledgedFrom: S | null})[];
  /** Stored episodes that no derived episode continues: a late reading left their run too short. They are retracted, not deleted. */
  retract: S[];
}

/**
 * What turns the stored episodes of a window into the derived ones. A derived episode continues
 * the first stored episode it overlaps that no earlier derived episode continued: it keeps that
 * row's id and acknowledgement. One that overlaps only already-continued stored episodes is part
 * of one that was split: it is new, and inherits the acknowledgement of the episode it split
 * from (it was acknowledged as part of it). Stored episodes nothing continues are retracted.
 *
 * @param stored the stored episodes of the window, any order
 * @param derived the derived episodes of the same window, oldest first
 */
export function episodeChanges<S extends StoredEpisode>(stored: readonly S[], derived: readonly Episode[]): EpisodeChanges<S> {
  const changes: EpisodeChanges<S> = {update: [], insert: [], retract: []};
  const byTime = [...stored].sort((a, b) => a.breachStartedAt.getTime() - b.breachStartedAt.getTime());
  const continued = new Set<S>();
  for (const episode of derived) {
    const candidates = byTime.filter((s) => overlaps(s, episode));
    const match = candidates.find((s) => !continued.has(s));
    if (match) {
      continued.add(match);
      changes.update.push({...episode, id: match.id});
    } else {
      changes.insert.push({...episode, acknowledgedFrom: candidates[0] ?? null});
    }
  }
  changes.retract = byTime.filter((s) => !continued.has(s));
  return changes;
}

/** True when a stored episode already holds exactly the derived values (nothing to write). */
export function sameEpisode(a: Episode, b: Episode): boolean {
  return (
    a.readingId === b.readingId &&
    a.temperatureCelsius === b.temperatureCelsius &&
    a.breachStartedAt.getTime() === b.breachStartedAt.getTime() &&
    a.firedAt.getTime() === b.firedAt.getTime() &&
    a.lastReadingAt.getTime() === b.lastReadingAt.getTime() &&
    a.peakTemperatureCelsius === b.peakTemperatureCelsius &&
    a.readingCount === b.readingCount &&
    (a.resolvedAt?.getTime() ?? null) === (b.resolvedAt?.getTime() ?? null)
  );
}
