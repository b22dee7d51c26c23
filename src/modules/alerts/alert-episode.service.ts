import {Inject, Injectable} from "@tsed/common";
import {AppConfig} from "../../config/app-config.js";
import {
  deriveEpisodes,
  type Episode,
  type EpisodeReading,
  episodeChanges,
  type EpisodeState,
  inRecordedOrder,
  type RuleState,
  sameEpisode
} from "./alert-episodes.js";
import {AlertRepository, type EpisodeWrites, type StoredAlert} from "./alert.repository.js";

/**
 * Keeps a device's stored alert episodes equal to what deriveEpisodes (alert-episodes.ts) gives
 * for all of its readings in recordedAt order, whatever order and batches they arrive in. Runs
 * inside the write's transaction, after `lockRules` and the readings' INSERT.
 *
 * - In order (the common case): every new reading is newer than the device's newest one before
 *   the write. The episodes go on from the rule's open episode, as stored; nothing is read.
 * - Late: a reading behind the newest one, but within ALERT_LATE_HORIZON of it. The episodes that
 *   end after the earliest such reading (or are open) are re-derived from the start of the first
 *   of them (or from that reading, when none contains it), over every stored reading from there,
 *   and the difference is written: episodes open, extend, split or resolve; those that go on keep
 *   their id and acknowledgement, a part split off inherits the acknowledgement.
 * - A reading further behind than the horizon is stored and counted in the statistics, but changes
 *   no episode when it arrives (a later re-derivation whose window covers it takes it into account).
 * Readings recorded before a rule's `evaluatedFrom` are never evaluated by it.
 */
@Injectable()
export class AlertEpisodeService {
  @Inject()
  private alerts!: AlertRepository;

  @Inject()
  private config!: AppConfig;

  /**
   * Before the write's INSERT, in its transaction: the device's enabled rules, locked until it
   * ends. Writes that may change the device's episodes run one at a time, each reading the rules
   * and readings as the previous one committed them.
   */
  lockRules(deviceId: string): Promise<string[]> {
    return this.alerts.lockRules(deviceId);
  }

  /**
   * @param inserted the readings this write stored (duplicates excluded), any order
   * @param readingsFrom the device's stored readings recorded at or after an instant, in recordedAt
   *   order (the readings feature owns them; needed only for late readings)
   * @returns the episodes opened, extended, split or resolved, and how many are new
   */
  async apply(
    deviceId: string,
    state: EpisodeState,
    inserted: readonly EpisodeReading[],
    readingsFrom: (from: Date) => Promise<EpisodeReading[]>
  ): Promise<{alerts: StoredAlert[]; opened: number}> {
    const writes: EpisodeWrites = {remove: [], update: [], insert: []};
    const touched = new Set<string>();
    const watermark = state.watermark?.getTime() ?? null;
    const horizon = watermark === null ? Number.NEGATIVE_INFINITY : watermark - this.config.alerts.lateHorizonMs;
    const late: {rule: RuleState; earliest: number}[] = [];

    for (const rule of state.rules) {
      const from = Math.max(rule.evaluatedFrom?.getTime() ?? Number.NEGATIVE_INFINITY, horizon);
      const evaluated = inserted.filter((r) => r.recordedAt.getTime() >= from);
      if (evaluated.length === 0) continue;
      let earliest = Number.POSITIVE_INFINITY;
      for (const reading of evaluated) earliest = Math.min(earliest, reading.recordedAt.getTime());
      if (watermark !== null && earliest < watermark) {
        late.push({rule, earliest});
        continue;
      }
      const derived = deriveEpisodes(rule, inRecordedOrder(evaluated), rule.open);
      const continued = rule.open ? derived.shift()! : null;
      if (continued && !sameEpisode(continued, rule.open!)) {
        writes.update.push({...continued, id: rule.open!.id});
        touched.add(rule.ruleId);
      }
      for (const episode of derived) {
        writes.insert.push({...episode, ruleId: rule.ruleId, acknowledgedAt: null, acknowledgedById: null});
        touched.add(rule.ruleId);
      }
    }

    if (late.length) await this.rederive(late, readingsFrom, writes, touched);
    if (touched.size === 0) return {alerts: [], opened: 0};
    const alerts = await this.alerts.write(deviceId, [...touched], writes);
    return {alerts, opened: writes.insert.length};
  }

  /** The late case: loads the affected episodes and the window's readings once for all rules, re-derives, adds the difference. */
  private async rederive(
    late: {rule: RuleState; earliest: number}[],
    readingsFrom: (from: Date) => Promise<EpisodeReading[]>,
    writes: EpisodeWrites,
    touched: Set<string>
  ) {
    const stored = await this.alerts.episodesEndingAfter(
      late.map(({rule}) => rule.ruleId),
      new Date(Math.min(...late.map(({earliest}) => earliest)))
    );
    const windows = late.map(({rule, earliest}) => {
      const affected = stored.filter((e) => e.ruleId === rule.ruleId && (e.resolvedAt === null || e.resolvedAt.getTime() > earliest));
      return {rule, affected, start: Math.min(earliest, ...affected.map((e) => e.firedAt.getTime()))};
    });
    const readings = await readingsFrom(new Date(Math.min(...windows.map((w) => w.start))));
    for (const {rule, affected, start} of windows) {
      const from = Math.max(start, rule.evaluatedFrom?.getTime() ?? Number.NEGATIVE_INFINITY);
      const derived: Episode[] = deriveEpisodes(
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
      if (changes.remove.length === 0 && updates.length === 0 && changes.insert.length === 0) continue;
      touched.add(rule.ruleId);
      writes.remove.push(...changes.remove.map((e) => e.id));
      writes.update.push(...updates);
      for (const {acknowledgedFrom, ...episode} of changes.insert) {
        writes.insert.push({
          ...episode,
          ruleId: rule.ruleId,
          acknowledgedAt: acknowledgedFrom?.acknowledgedAt ?? null,
          acknowledgedById: acknowledgedFrom?.acknowledgedById ?? null
        });
      }
    }
  }
}
