import {Inject, Injectable} from "@tsed/di";
import {ConcurrentChangeError} from "../../platform/db/concurrent-change.error.js";
import {isLate, planEpisodes, type RuleState, type StoredReading, violates} from "./alert-episodes.js";
import {type AlertData, AlertRepository, type EpisodeState} from "./alert.repository.js";

export interface EpisodeOutcome {
  /** Alerts opened, extended or resolved by the write. */
  alerts: AlertData[];
  /** How many of them were opened. */
  opened: number;
}

/**
 * Applies alert rules to freshly stored readings, inside the ingest transaction: the rules' state
 * comes from the ingest statement itself (read before its INSERT, see ruleStateRows), the plan
 * is made in memory (alert-episodes.ts) and written with set-based statements.
 */
@Injectable()
export class AlertEpisodeService {
  @Inject()
  private alerts!: AlertRepository;

  async apply(deviceId: string, state: EpisodeState, readings: readonly StoredReading[]): Promise<EpisodeOutcome> {
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
  private async withResolvedEpisodes(deviceId: string, state: EpisodeState, readings: readonly StoredReading[]): Promise<RuleState[]> {
    const late = readings.filter((r) => isLate(r, state.watermark));
    const ruleIds = state.rules.filter((rule) => late.some((r) => violates(rule.condition, rule.thresholdCelsius, r.temperatureCelsius))).map((rule) => rule.ruleId);
    if (ruleIds.length === 0) return state.rules;
    const times = late.map((r) => r.recordedAt.getTime());
    const episodes = await this.alerts.findResolvedEpisodes(deviceId, ruleIds, new Date(Math.min(...times)), new Date(Math.max(...times)));
    return state.rules.map((rule) => ({...rule, closed: episodes.filter((e) => e.ruleId === rule.ruleId)}));
  }
}
