import {beyondFor, type Threshold} from "./alert-predicate.js";

/*
 * Alert episodes as a pure function of a device's readings in recordedAt order: the one place
 * where episode semantics live. No I/O here; AlertEpisodeService loads what it needs, runs this,
 * and writes the difference.
 *
 * Whether a reading violates a rule is alert-predicate.ts's (`beyondFor`, `violates`). Over the readings in recordedAt order:
 * - no open episode + violating reading: opens an episode (that reading, its temperature, firedAt);
 * - open episode + violating reading: joins it (readingCount + 1, the most extreme temperature as
 *   peak, lastReadingAt = its recordedAt);
 * - open episode + reading inside the threshold: resolves it (resolvedAt = its recordedAt);
 * - no open episode + reading inside the threshold: nothing.
 * Whatever order and batching the readings arrive in, the stored episodes are meant to be what
 * this function gives for all of them in recordedAt order (see AlertEpisodeService for how late
 * readings re-derive a window).
 */

export type {Threshold} from "./alert-predicate.js";

/** What the state machine needs of a stored reading. */
export interface EpisodeReading {
  id: string;
  temperatureCelsius: number;
  recordedAt: Date;
}

/** One episode, as derived here or as stored (an alert row). */
export interface Episode {
  /** The reading that opened it. */
  readingId: string;
  /** Its temperature. */
  temperatureCelsius: number;
  /** Its recordedAt. */
  firedAt: Date;
  lastReadingAt: Date;
  peakTemperatureCelsius: number;
  readingCount: number;
  resolvedAt: Date | null;
}

/** An evaluated rule of a device and its decision state, as the ingest statement reads them (ruleStatesSql). */
export interface RuleState extends Threshold {
  ruleId: string;
  /** Readings recorded before this are not evaluated (null: none is excluded). */
  evaluatedFrom: Date | null;
  open: StoredEpisode | null;
}

/** The device's rules and its newest reading before the write (null: none yet). */
export interface EpisodeState {
  rules: RuleState[];
  watermark: Date | null;
}

/**
 * The episodes of `readings` under `rule`, continuing `open` (an episode still open before the
 * first of them, or null when none is).
 *
 * @param readings sorted by recordedAt, all after `open`'s last reading
 * @returns the episodes these readings touched, oldest first: `open` carried on (a new object) when
 *   given, then every episode they opened. An untouched `open` comes back unchanged.
 */
export function deriveEpisodes(rule: Threshold, readings: readonly EpisodeReading[], open: Episode | null = null): Episode[] {
  let current = open && open.resolvedAt === null ? {...open} : null;
  const episodes = current ? [current] : [];
  const beyond = beyondFor(rule.condition);
  for (const reading of readings) {
    const t = reading.temperatureCelsius;
    if (beyond(t, rule.thresholdCelsius)) {
      if (current) {
        current.readingCount++;
        if (beyond(t, current.peakTemperatureCelsius)) current.peakTemperatureCelsius = t;
        current.lastReadingAt = reading.recordedAt;
      } else {
        current = {
          readingId: reading.id,
          temperatureCelsius: t,
          firedAt: reading.recordedAt,
          lastReadingAt: reading.recordedAt,
          peakTemperatureCelsius: t,
          readingCount: 1,
          resolvedAt: null
        };
        episodes.push(current);
      }
    } else if (current) {
      current.resolvedAt = reading.recordedAt;
      current = null;
    }
  }
  return episodes;
}

/** Sorts readings by recordedAt (a copy). Instants compare as numbers: Date relational operators go through valueOf, ~15 times slower. */
export function inRecordedOrder<T extends {recordedAt: Date}>(readings: readonly T[]): T[] {
  return [...readings].sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());
}

/** Whether two episodes cover some common stretch of time: [firedAt, resolvedAt), open ones to the end. */
function overlaps(a: Episode, b: Episode): boolean {
  const end = (e: Episode) => (e.resolvedAt === null ? Number.POSITIVE_INFINITY : e.resolvedAt.getTime());
  return a.firedAt.getTime() < end(b) && b.firedAt.getTime() < end(a);
}

/** A stored episode: an alert row with its id and acknowledgement. */
export interface StoredEpisode extends Episode {
  id: string;
  acknowledgedAt: Date | null;
  acknowledgedById: string | null;
}

export interface EpisodeChanges<S extends StoredEpisode> {
  /** Stored episodes that keep their id (and acknowledgement) and take the derived values. */
  update: (Episode & {id: string})[];
  /** Derived episodes with no stored counterpart; `acknowledgedFrom` is the stored episode they split from, if any. */
  insert: (Episode & {acknowledgedFrom: S | null})[];
  /** Stored episodes that no derived episode continues. */
  remove: S[];
}

/**
 * What turns the stored episodes of a window into the derived ones. A derived episode continues
 * the first stored episode it overlaps that no earlier derived episode continued: it keeps that
 * row's id and acknowledgement. One that overlaps only already-continued stored episodes is part
 * of one that was split: it is new, and inherits the acknowledgement of the episode it split
 * from (it was acknowledged as part of it). Stored episodes nothing continues are removed.
 *
 * @param stored the stored episodes of the window, any order
 * @param derived the derived episodes of the same window, oldest first
 */
export function episodeChanges<S extends StoredEpisode>(stored: readonly S[], derived: readonly Episode[]): EpisodeChanges<S> {
  const changes: EpisodeChanges<S> = {update: [], insert: [], remove: []};
  const byTime = [...stored].sort((a, b) => a.firedAt.getTime() - b.firedAt.getTime());
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
  changes.remove = byTime.filter((s) => !continued.has(s));
  return changes;
}

/** True when a stored episode already holds exactly the derived values (nothing to write). */
export function sameEpisode(a: Episode, b: Episode): boolean {
  return (
    a.readingId === b.readingId &&
    a.temperatureCelsius === b.temperatureCelsius &&
    a.firedAt.getTime() === b.firedAt.getTime() &&
    a.lastReadingAt.getTime() === b.lastReadingAt.getTime() &&
    a.peakTemperatureCelsius === b.peakTemperatureCelsius &&
    a.readingCount === b.readingCount &&
    (a.resolvedAt?.getTime() ?? null) === (b.resolvedAt?.getTime() ?? null)
  );
}
