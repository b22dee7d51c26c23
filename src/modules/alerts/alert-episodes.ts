import {AlertCondition} from "./alert-rule.entity.js";

/*
 * Alert episodes as a pure state machine: given a device's enabled rules with their stored
 * episodes and the readings a write has just stored, work out which alerts to open and how stored
 * ones change. No I/O here; AlertEpisodeService loads the state and writes the outcome.
 *
 * A reading violates `above` when temperature > threshold, `below` when temperature < threshold.
 * Per rule, over the new readings in recordedAt order:
 * - Open alert + violating reading: the reading joins the episode (readingCount + 1, peak = the
 *   most extreme temperature, lastReadingAt = the latest violation seen).
 * - Open alert + reading inside the threshold, newer than the alert's lastReadingAt: resolves it
 *   (resolvedAt = that reading's recordedAt). An older one is stale — a later violation has been
 *   seen — and changes nothing.
 * - No open alert + violating reading: opens an episode.
 *
 * Late readings — not newer than the newest reading the device had before this write (the
 * `watermark`) — arrive after later readings already decided the present state, so they never
 * open an episode. A late violation joins the stored episode whose span [firedAt, resolvedAt)
 * contains it, open or already resolved; failing that, the open episode (the violation preceded
 * the reading that opened it); failing that, it is only stored. This keeps the outcome
 * independent of the order in which concurrent writers commit: violations racing to open an
 * episode all end up in the one that won, and a violation that commits just after the reading
 * that resolved its episode still counts in that episode instead of opening a new one.
 */

export interface RuleState {
  ruleId: string;
  condition: AlertCondition;
  thresholdCelsius: number;
  open: StoredEpisode | null;
  /** Resolved episodes that may contain late readings of this write (loaded only when there are some). */
  closed: StoredEpisode[];
}

export interface StoredEpisode {
  id: string;
  firedAt: Date;
  lastReadingAt: Date;
  resolvedAt: Date | null;
}

/** The state of a device's rules when a write starts: what the ingest statement reads before its INSERT. */
export interface EpisodeState {
  rules: RuleState[];
  /** Newest recordedAt of the device's readings before this write (null: none yet). */
  watermark: Date | null;
}

/** What the state machine needs of a stored reading. */
export interface EpisodeReading {
  id: string;
  temperatureCelsius: number;
  recordedAt: Date;
}

/** What happens to a stored alert. */
export interface AlertAdvance {
  alertId: string;
  ruleId: string;
  condition: AlertCondition;
  /** The alert was resolved before this write (late violations joining a past episode). */
  wasResolved: boolean;
  /** Violating readings that joined the episode. */
  addedReadings: number;
  /** Most extreme temperature among them (null when none joined). */
  peakTemperatureCelsius: number | null;
  /** Latest recordedAt among them (null when none joined). */
  lastReadingAt: Date | null;
  /** Set when a reading inside the threshold ended the (open) episode. */
  resolvedAt: Date | null;
}

/** An episode opened by this write; it may already be resolved by a later reading of the same write. */
export interface AlertOpening {
  ruleId: string;
  readingId: string;
  temperatureCelsius: number;
  firedAt: Date;
  lastReadingAt: Date;
  peakTemperatureCelsius: number;
  readingCount: number;
  resolvedAt: Date | null;
}

export interface EpisodePlan {
  advances: AlertAdvance[];
  openings: AlertOpening[];
}

export function violates(condition: AlertCondition, thresholdCelsius: number, temperatureCelsius: number): boolean {
  return condition === AlertCondition.ABOVE ? temperatureCelsius > thresholdCelsius : temperatureCelsius < thresholdCelsius;
}

/** The more extreme of two temperatures for the rule's condition. */
function extreme(condition: AlertCondition, a: number, b: number): number {
  return condition === AlertCondition.ABOVE ? Math.max(a, b) : Math.min(a, b);
}

// Instants are compared as numbers throughout: a relational operator on two Dates converts both
// through valueOf, ~15 times slower, and this runs per reading and rule for 1,000-reading batches.
export const isLate = (reading: EpisodeReading, watermark: Date | null) => watermark !== null && reading.recordedAt.getTime() <= watermark.getTime();

/**
 * @param readings the readings this write stored (duplicates excluded), in any order
 * @param watermark the newest recordedAt the device had before this write, or null
 */
export function planEpisodes(rules: readonly RuleState[], readings: readonly EpisodeReading[], watermark: Date | null): EpisodePlan {
  const ordered = [...readings].sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());
  const plan: EpisodePlan = {advances: [], openings: []};

  for (const rule of rules) {
    const {condition, thresholdCelsius} = rule;
    const advances = new Map<string, AlertAdvance>();
    const advanceOf = (episode: StoredEpisode): AlertAdvance => {
      let advance = advances.get(episode.id);
      if (!advance) {
        advance = {alertId: episode.id, ruleId: rule.ruleId, condition, wasResolved: episode !== rule.open, addedReadings: 0, peakTemperatureCelsius: null, lastReadingAt: null, resolvedAt: null};
        advances.set(episode.id, advance);
      }
      return advance;
    };
    const join = (episode: StoredEpisode, reading: EpisodeReading) => {
      const a = advanceOf(episode);
      a.addedReadings++;
      a.peakTemperatureCelsius = a.peakTemperatureCelsius === null ? reading.temperatureCelsius : extreme(condition, a.peakTemperatureCelsius, reading.temperatureCelsius);
      if (!a.lastReadingAt || reading.recordedAt.getTime() > a.lastReadingAt.getTime()) a.lastReadingAt = reading.recordedAt;
    };

    // The stored open episode as this write changes it (lastReadingAt moves, resolvedAt may be set).
    const open = rule.open ? {...rule.open} : null;
    let opening: AlertOpening | null = null;

    for (const reading of ordered) {
      const {temperatureCelsius: t, recordedAt} = reading;
      const violating = violates(condition, thresholdCelsius, t);

      if (opening && !opening.resolvedAt) {
        // An episode opened by this write: every later reading is newer than it.
        if (violating) {
          opening.readingCount++;
          opening.peakTemperatureCelsius = extreme(condition, opening.peakTemperatureCelsius, t);
          opening.lastReadingAt = recordedAt;
        } else {
          opening.resolvedAt = recordedAt;
        }
      } else if (violating && isLate(reading, watermark)) {
        const span = rule.closed.find((e) => e.firedAt.getTime() <= recordedAt.getTime() && recordedAt.getTime() < e.resolvedAt!.getTime());
        if (span) {
          join(span, reading);
        } else if (open && !open.resolvedAt) {
          join(rule.open!, reading);
          if (recordedAt.getTime() > open.lastReadingAt.getTime()) open.lastReadingAt = recordedAt;
        }
      } else if (open && !open.resolvedAt) {
        if (violating) {
          join(rule.open!, reading);
          if (recordedAt.getTime() > open.lastReadingAt.getTime()) open.lastReadingAt = recordedAt;
        } else if (recordedAt.getTime() > open.lastReadingAt.getTime()) {
          open.resolvedAt = recordedAt;
          advanceOf(rule.open!).resolvedAt = recordedAt;
        }
      } else if (violating) {
        opening = {ruleId: rule.ruleId, readingId: reading.id, temperatureCelsius: t, firedAt: recordedAt, lastReadingAt: recordedAt, peakTemperatureCelsius: t, readingCount: 1, resolvedAt: null};
        plan.openings.push(opening);
      }
    }
    plan.advances.push(...advances.values());
  }
  return plan;
}
