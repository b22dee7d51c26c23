import {Inject, Injectable} from "@tsed/common";
import {AppConfig} from "../../config/app-config.js";
import {
  deriveEpisodes,
  type EpisodeReading,
  episodeChanges,
  type EpisodeState,
  inRecordedOrder,
  sameEpisode,
  type Threshold,
  type ThresholdRuleState
} from "./alert-episodes.js";
import {AlertEvents, type AlertChange} from "./alert-events.js";
import {violates} from "./alert-predicate.js";
import {AlertRuleKind} from "./alert-rule.entity.js";
import {AlertRepository, type EpisodeWrites, type EventContext, type StoredAlert} from "./alert.repository.js";

/** What the episode service reads of the device's stored readings (the readings feature owns them). */
export interface StoredReadings {
  /** The device's readings recorded at or after `from`, in recordedAt order. */
  since(from: Date): Promise<EpisodeReading[]>;
  /** Where the run of readings violating `rule` that ends just before `before` began (null: the reading before does not violate). */
  runStart(rule: Threshold, before: Date, notBefore: Date | null): Promise<Date | null>;
}

/**
 * Keeps a device's stored alert episodes equal to what deriveEpisodes (alert-episodes.ts) gives
 * for all of its readings in recordedAt order, whatever order and batches they arrive in, and
 * announces every change (AlertEvents, the outbox). Runs inside the write's transaction, after
 * `lockRules` and the readings' INSERT.
 *
 * - In order (the common case): every new reading is newer than the device's newest one before
 *   the write. The episodes go on from the rule's open episode, as stored; nothing is read, except
 *   when a rule with forSeconds > 0 has no open episode and a new reading violates it: then the
 *   run it continues is read from where it began (runStart), so that the run's length, peak and
 *   count are the stored readings'.
 * - Late: a reading behind the newest one, but within ALERT_LATE_HORIZON of it. The episodes that
 *   end after the earliest such reading (or are open) are re-derived from the start of the first
 *   of them (or from the start of the run that reading falls in), over every stored reading from
 *   there, and the difference is written: episodes fire, extend, split, resolve or are retracted
 *   (a run left shorter than forSeconds); those that go on keep their id and acknowledgement, a
 *   part split off inherits the acknowledgement.
 * - A reading further behind than the horizon is stored and counted in the statistics, but changes
 *   no episode when it arrives (a later re-derivation whose window covers it takes it into account).
 * - no_data rules: the write is an arrival of the device, which resolves the rule's open episode.
 * Readings recorded before a rule's `evaluatedFrom` are never evaluated by it.
 */
@Injectable()
export class AlertEpisodeService {
  @Inject()
  private alerts!: AlertRepository;

  @Inject()
  private events!: AlertEvents;

  @Inject()
  private config!: AppConfig;

  /**
   * Before the write's INSERT, in its transaction: the device's enabled rules, locked until it
   * ends. Writes that may change the device's episodes run one at a time, each reading the rules
   * and readings as the previous one committed them. Returns what `apply` announces of them.
   */
  lockRules(deviceId: string): Promise<EventContext[]> {
    return this.alerts.lockRules(deviceId);
  }

  /**
   * @param inserted the readings this write stored (duplicates excluded), any order
   * @param arrivedAt the server time of this write (the readings' createdAt): when it resolves a no_data episode
   * @param stored the device's stored readings (needed only for late readings and runs that have not fired yet)
   * @param locked what lockRules returned in this transaction
   * @returns the episodes fired, extended, split or resolved, and how many fired
   */
  async apply(
    deviceId: string,
    state: EpisodeState,
    inserted: readonly EpisodeReading[],
    arrivedAt: Date,
    stored: StoredReadings,
    locked: readonly EventContext[]
  ): Promise<{alerts: StoredAlert[]; opened: number}> {
    const writes: EpisodeWrites = {retract: [], resolve: [], update: [], insert: []};
    const touched = new Set<string>();
    const watermark = state.watermark?.getTime() ?? null;
    const horizon = watermark === null ? Number.NEGATIVE_INFINITY : watermark - this.config.alerts.lateHorizonMs;
    const late: {rule: ThresholdRuleState; earliest: number}[] = [];
    const wasOpen = new Set<string>();

    for (const rule of state.rules) {
      if (rule.kind === AlertRuleKind.NO_DATA) {
        if (rule.openAlertId !== null) {
          writes.resolve.push({id: rule.openAlertId, resolvedAt: arrivedAt});
          touched.add(rule.ruleId);
        }
        continue;
      }
      if (rule.open) wasOpen.add(rule.open.id);
      const from = Math.max(rule.evaluatedFrom?.getTime() ?? Number.NEGATIVE_INFINITY, horizon);
      const evaluated = inserted.filter((r) => r.recordedAt.getTime() >= from);
      if (evaluated.length === 0) continue;
      let earliest = Number.POSITIVE_INFINITY;
      for (const reading of evaluated) earliest = Math.min(earliest, reading.recordedAt.getTime());
      if (watermark !== null && earliest < watermark) {
        late.push({rule, earliest});
        continue;
      }
      let readings = inRecordedOrder(evaluated);
      if (!rule.open && rule.forSeconds > 0 && readings.some((r) => violates(rule, r.temperatureCelsius))) {
        const start = await stored.runStart(rule, readings[0]!.recordedAt, rule.evaluatedFrom);
        if (start) readings = await stored.since(start);
      }
      const derived = deriveEpisodes(rule, readings, rule.open);
      const continued = rule.open ? derived.shift()! : null;
      if (continued && !sameEpisode(continued, rule.open!)) {
        writes.update.push({...continued, id: rule.open!.id});
        touched.add(rule.ruleId);
      }
      for (const episode of derived) {
        writes.insert.push({...episode, ruleId: rule.ruleId, acknowledgedAt: null, acknowledgedById: null, acknowledgementComment: null});
        touched.add(rule.ruleId);
      }
    }

    if (late.length) await this.rederive(late, horizon, stored, writes, touched, wasOpen);
    if (touched.size === 0) return {alerts: [], opened: 0};
    const written = await this.alerts.write(deviceId, [...touched], writes);
    await this.events.announce(changesOf(written, wasOpen), locked);
    return {alerts: [...written.updated, ...written.inserted, ...written.resolved], opened: writes.insert.length};
  }

  /** The late case: loads the affected episodes and the window's readings once for all rules, re-derives, adds the difference. */
  private async rederive(
    late: {rule: ThresholdRuleState; earliest: number}[],
    horizon: number,
    stored: StoredReadings,
    writes: EpisodeWrites,
    touched: Set<string>,
    wasOpen: Set<string>
  ) {
    const episodes = await this.alerts.episodesEndingAfter(
      late.map(({rule}) => rule.ruleId),
      new Date(Math.min(...late.map(({earliest}) => earliest)))
    );
    const windows = [];
    for (const {rule, earliest} of late) {
      const affected = episodes.filter((e) => e.ruleId === rule.ruleId && (e.resolvedAt === null || e.resolvedAt.getTime() > earliest));
      for (const e of affected) if (e.resolvedAt === null) wasOpen.add(e.id);
      const firstAffected = Math.min(earliest, ...affected.map((e) => e.breachStartedAt.getTime()));
      // The derivation must start where the device was idle: a run of violating readings that had
      // not fired may end just before, and a late reading can make it long enough. Not further
      // back than the horizon: readings behind it are not evaluated when they arrive.
      const notBefore = Math.max(rule.evaluatedFrom?.getTime() ?? Number.NEGATIVE_INFINITY, horizon);
      const runStart = await stored.runStart(rule, new Date(firstAffected), Number.isFinite(notBefore) ? new Date(notBefore) : null);
      windows.push({rule, affected, start: runStart?.getTime() ?? firstAffected});
    }
    const readings = await stored.since(new Date(Math.min(...windows.map((w) => w.start))));
    for (const {rule, affected, start} of windows) {
      const from = Math.max(start, rule.evaluatedFrom?.getTime() ?? Number.NEGATIVE_INFINITY);
      const derived = deriveEpisodes(
        rule,
        readings.filter((r) => r.recordedAt.getTime() >= from)
      );
      const changes = episodeChanges(affected, derived);
      const updates = changes.update.filter(
        (e) =>
          !sameEpisode(
            e,
            affected.find((s) => s.id === e.id)!
          )
      );
      if (changes.retract.length === 0 && updates.length === 0 && changes.insert.length === 0) continue;
      touched.add(rule.ruleId);
      writes.retract.push(...changes.retract.map((e) => e.id));
      writes.update.push(...updates);
      for (const {acknowledgedFrom, ...episode} of changes.insert) {
        writes.insert.push({
          ...episode,
          ruleId: rule.ruleId,
          acknowledgedAt: acknowledgedFrom?.acknowledgedAt ?? null,
          acknowledgedById: acknowledgedFrom?.acknowledgedById ?? null,
          acknowledgementComment: acknowledgedFrom?.acknowledgementComment ?? null
        });
      }
    }
  }
}

/** The events a write announces: every episode it fired (and resolved, when it arrived whole), resolved or retracted; an extension announces nothing. */
function changesOf(
  written: {updated: StoredAlert[]; inserted: StoredAlert[]; resolved: StoredAlert[]; retracted: StoredAlert[]},
  wasOpen: ReadonlySet<string>
): AlertChange[] {
  const changes: AlertChange[] = [];
  for (const alert of written.retracted) changes.push({type: "alert.retracted", alert});
  for (const alert of written.updated) if (wasOpen.has(alert.id) && alert.resolvedAt) changes.push({type: "alert.resolved", alert});
  for (const alert of written.resolved) changes.push({type: "alert.resolved", alert});
  for (const alert of written.inserted) {
    changes.push({type: "alert.fired", alert});
    if (alert.resolvedAt) changes.push({type: "alert.resolved", alert});
  }
  return changes;
}
