import {Inject, Injectable} from "@tsed/di";
import {ConcurrentChangeError} from "../../platform/db/concurrent-change.error.js";
import {type EpisodeReading, type EpisodeState, isLate, planEpisodes, type RuleState, violates} from "./alert-episodes.js";
import {AlertRepository, type StoredAlert} from "./alert.repository.js";

/**
 * Applies alert rules to freshly stored readings, inside the ingest transaction: the rules' state
 * comes from the ingest statement itself (read before its INSERT), the plan
 * is made in memory (alert-episodes.ts) and written with set-based statements.
 */
@Injectable()
export class AlertEpisodeService {
  @Inject()
  private alerts!: AlertRepository;

  /** @returns the alerts opened, extended or resolved by the write, and how many of them it opened */
  async apply(deviceId: string, state: EpisodeState, readings: readonly EpisodeReading[]): Promise<{alerts: StoredAlert[]; opened: number}> {
    if (state.rules.length === 0 || readings.length === 0) return {alerts: [], opened: 0};
    const rules = await this.withResolvedEpisodes(deviceId, state, readings);
    const plan = planEpisodes(rules, readings, state.watermark);
    // Advances first: an episode resolved by this write must be closed before the next one opens.
    const advanced = await this.alerts.advance(plan.advances);
    if (advanced.length !== plan.advances.length) {
      throw new ConcurrentChangeError("An alert was resolved or extended by a concurrent write");
    }
    const opened = await this.alerts.open(deviceId, plan.openings);
    return {alerts: [...advanced, ...opened], opened: opened.length};
  }

  /** Late violations may belong to resolved episodes: load those (rarely needed, hence a second query). */
  private async withResolvedEpisodes(deviceId: string, state: EpisodeState, readings: readonly EpisodeReading[]): Promise<RuleState[]> {
    const late = readings.filter((r) => isLate(r, state.watermark));
    const ruleIds = state.rules.filter((rule) => late.some((r) => violates(rule.condition, rule.thresholdCelsius, r.temperatureCelsius))).map((rule) => rule.ruleId);
    if (ruleIds.length === 0) return state.rules;
    const times = late.map((r) => r.recordedAt.getTime());
    const episodes = await this.alerts.findResolvedEpisodes(deviceId, ruleIds, new Date(Math.min(...times)), new Date(Math.max(...times)));
    return state.rules.map((rule) => ({...rule, closed: episodes.filter((e) => e.ruleId === rule.ruleId)}));
  }
}
