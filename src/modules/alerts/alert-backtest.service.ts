import {Inject, Injectable} from "@tsed/common";
import {InvalidInputError} from "../../common/errors.js";
import {keptSince} from "../../common/raw-retention.js";
import {AppConfig} from "../../config/app-config.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {TenantSettingsCache} from "../../platform/tenancy/tenant-settings.cache.js";
import {DeviceService} from "../devices/device.service.js";
import {AlertBacktestRepository} from "./alert-backtest.repository.js";
import {type BacktestEpisode, type BacktestRequest, type BacktestResult, MAX_BACKTEST_DAYS} from "./alert-backtest.models.js";
import {deriveEpisodes, deriveSilences} from "./alert-episodes.js";
import {AlertCondition, AlertRuleKind} from "./alert-rule.entity.js";
import {assertKindFields} from "./alert-rule.service.js";

const DAY_MS = 86_400_000;

/**
 * What a rule would have done over a device's stored readings, had it existed since `from`
 * (docs/api.md, "Backtest"): the same state machine as live evaluation (alert-episodes.ts), run
 * over what is stored now. It writes and announces nothing.
 *
 * - threshold: deriveEpisodes over the readings recorded in [from, to), in recordedAt order,
 *   exactly what a rule whose evaluatedFrom is `from` derives once all of them are in. Nothing is
 *   ever retracted: every reading is there at once.
 * - no_data: deriveSilences over the server times (createdAt) at which the device's readings
 *   arrived in [from, min(to, now)). An approximation of the live rule in three ways: arrivals are
 *   found among the readings recorded from ALERT_LATE_HORIZON before `from` (a back-fill of
 *   readings recorded longer ago than that is not seen as an arrival); a write whose readings were
 *   all duplicates left no row, so it is not one either; and a device deactivated in the range
 *   still gets its silences.
 */
@Injectable()
export class AlertBacktestService {
  @Inject()
  private devices!: DeviceService;

  @Inject()
  private readings!: AlertBacktestRepository;

  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private settings!: TenantSettingsCache;

  @Inject()
  private config!: AppConfig;

  /** @throws InvalidInputError (fields of the wrong kind, the range), NotFoundError (device) */
  async run(deviceId: string, request: BacktestRequest, now: Date = new Date()): Promise<BacktestResult> {
    const rule = {
      kind: request.kind ?? AlertRuleKind.THRESHOLD,
      condition: request.condition ?? null,
      thresholdCelsius: request.thresholdCelsius ?? null,
      forSeconds: request.forSeconds ?? 0,
      clearDeltaCelsius: request.clearDeltaCelsius ?? 0,
      silenceSeconds: request.silenceSeconds ?? null
    };
    assertKindFields(rule);
    await this.assertRange(request.from, request.to, now);
    await this.devices.get(deviceId);
    const {from, to} = request;
    const end = new Date(Math.min(to.getTime(), now.getTime()));

    if (rule.kind === AlertRuleKind.NO_DATA) {
      const arrivals = await this.readings.arrivals(
        deviceId,
        {
          from: new Date(from.getTime() - this.config.alerts.lateHorizonMs),
          to: new Date(end.getTime() + this.config.readings.maxFutureSkewMs)
        },
        {from, to: end}
      );
      const episodes = deriveSilences(rule.silenceSeconds!, arrivals, from, end).map((e): BacktestEpisode => ({
        breachStartedAt: e.silentSince,
        firedAt: e.firedAt,
        resolvedAt: e.resolvedAt,
        retractedAt: null,
        peakTemperatureCelsius: null,
        readingCount: 0,
        temperatureCelsius: null,
        silentSince: e.silentSince
      }));
      return {episodes, totalBreachSeconds: breachSeconds(episodes, end), readingsEvaluated: arrivals.length};
    }

    const readings = await this.readings.readings(deviceId, from, to);
    const derived = deriveEpisodes(
      {
        condition: rule.condition as AlertCondition,
        thresholdCelsius: rule.thresholdCelsius!,
        forSeconds: rule.forSeconds,
        clearDeltaCelsius: rule.clearDeltaCelsius
      },
      readings
    );
    const episodes = derived.map((e): BacktestEpisode => ({
      breachStartedAt: e.breachStartedAt,
      firedAt: e.firedAt,
      resolvedAt: e.resolvedAt,
      retractedAt: null,
      peakTemperatureCelsius: e.peakTemperatureCelsius,
      readingCount: e.readingCount,
      temperatureCelsius: e.temperatureCelsius,
      silentSince: null
    }));
    return {episodes, totalBreachSeconds: breachSeconds(episodes, end), readingsEvaluated: readings.length};
  }

  /** `from` < `to`, at most MAX_BACKTEST_DAYS apart, `from` within the tenant's raw retention (older readings are gone, not absent). */
  private async assertRange(from: Date, to: Date, now: Date): Promise<void> {
    if (from.getTime() >= to.getTime())
      throw new InvalidInputError("`from` must be before `to` (from is inclusive, to exclusive)", [
        {path: "from", message: "must be before to"},
        {path: "to", message: "must be after from"}
      ]);
    if (to.getTime() - from.getTime() > MAX_BACKTEST_DAYS * DAY_MS)
      throw new InvalidInputError(
        `A backtest covers at most ${MAX_BACKTEST_DAYS} days: \`to\` is ${((to.getTime() - from.getTime()) / DAY_MS).toFixed(2)} days after \`from\``,
        [{path: "to", message: `must be at most ${MAX_BACKTEST_DAYS} days after from`}]
      );
    const {rawRetentionDays} = await this.settings.get(this.tenant.tenantId);
    const since = keptSince(rawRetentionDays, now);
    if (since !== null && from.getTime() < since.getTime())
      throw new InvalidInputError(
        `\`from\` must not be before ${since.toISOString()}: the tenant keeps raw readings for ${rawRetentionDays} days (rawRetentionDays), older ones are gone`,
        [{path: "from", message: "must be within the tenant's raw retention", keptSince: since.toISOString()}]
      );
  }
}

/**
 * How long the condition held, in seconds, summed over the episodes: from breachStartedAt (for
 * no_data, silentSince) to resolvedAt, or to `end` (the earlier of `to` and now) for one still open.
 */
function breachSeconds(episodes: readonly BacktestEpisode[], end: Date): number {
  let ms = 0;
  for (const e of episodes) ms += Math.max(0, (e.resolvedAt ?? end).getTime() - e.breachStartedAt.getTime());
  return ms / 1000;
}
