import {CollectionOf, Default, Description, Enum, Example, Format, Integer, Maximum, Minimum, Nullable, Required} from "@tsed/schema";
import {MAX_TEMPERATURE_CELSIUS, MIN_TEMPERATURE_CELSIUS} from "../../common/temperature.js";
import {JsonNumbers} from "../../platform/validation/json-numbers.keyword.js";
import {ALARM_LIMITS, AlertCondition, AlertRuleKind, AlertSeverity} from "./alert-rule.entity.js";

/** The longest range a backtest covers: a month of readings every 30 s is 89,280 of them, read in one query. */
export const MAX_BACKTEST_DAYS = 31;

/**
 * `POST /devices/{deviceId}/alert-rules/backtest`: a rule's fields, with the ranges and defaults
 * of AlertRule (severity, remindEverySeconds and isEnabled are accepted and play no part), and the
 * range `[from, to)` to evaluate it over.
 */
@JsonNumbers("thresholdCelsius", "clearDeltaCelsius")
export class BacktestRequest {
  @Enum(AlertRuleKind)
  @Default(AlertRuleKind.THRESHOLD)
  @Description("`threshold` (default) or `no_data`")
  @Example("threshold")
  kind: AlertRuleKind = AlertRuleKind.THRESHOLD;

  @Enum(AlertCondition, null)
  @Description("Threshold rules (required there; refused on `no_data`)")
  @Example("above")
  condition?: AlertCondition | null;

  @Nullable(Number)
  @Minimum(MIN_TEMPERATURE_CELSIUS)
  @Maximum(MAX_TEMPERATURE_CELSIUS)
  @Description("Threshold rules (required there; refused on `no_data`)")
  @Example(8)
  thresholdCelsius?: number | null;

  @Integer()
  @Minimum(ALARM_LIMITS.forSeconds.min)
  @Maximum(ALARM_LIMITS.forSeconds.max)
  @Default(0)
  @Description("Threshold rules: how long violating readings must last before the episode fires")
  @Example(300)
  forSeconds: number = 0;

  @Minimum(ALARM_LIMITS.clearDeltaCelsius.min)
  @Maximum(ALARM_LIMITS.clearDeltaCelsius.max)
  @Default(0)
  @Description("Threshold rules: hysteresis, how far back inside the threshold a reading must be to resolve an open episode")
  @Example(1)
  clearDeltaCelsius: number = 0;

  @Nullable(Number)
  @Integer()
  @Minimum(ALARM_LIMITS.silenceSeconds.min)
  @Maximum(ALARM_LIMITS.silenceSeconds.max)
  @Description("`no_data` rules (required there; refused on threshold rules)")
  @Example(null)
  silenceSeconds?: number | null;

  @Enum(AlertSeverity)
  @Description("Accepted (so that a rule's body can be sent as it is) and ignored")
  @Example("critical")
  severity?: AlertSeverity;

  @Nullable(Number)
  @Integer()
  @Minimum(ALARM_LIMITS.remindEverySeconds.min)
  @Maximum(ALARM_LIMITS.remindEverySeconds.max)
  @Description("Accepted and ignored")
  @Example(null)
  remindEverySeconds?: number | null;

  @Description("Accepted and ignored")
  @Example(true)
  isEnabled?: boolean;

  @Required()
  @Format("date-time")
  @Description(
    `First instant, inclusive: the rule is evaluated as if it had existed since then. Within the tenant's raw retention; at most ${MAX_BACKTEST_DAYS} days before \`to\``
  )
  @Example("2026-03-01T00:00:00Z")
  from!: Date;

  @Required()
  @Format("date-time")
  @Description("Last instant, exclusive (may be in the future: the evaluation then stops now)")
  @Example("2026-03-08T00:00:00Z")
  to!: Date;
}

/** One episode the rule would have produced: an alert as it would have been stored, without ids. */
export class BacktestEpisode {
  @Required()
  @Format("date-time")
  @Description("When the condition began: the run's first violating reading (threshold), or silentSince (no_data)")
  @Example("2026-03-02T14:00:00Z")
  breachStartedAt!: Date;

  @Required()
  @Format("date-time")
  @Description("When the alert would have fired: the reading with which the run had lasted forSeconds, or silentSince + silenceSeconds")
  @Example("2026-03-02T14:05:00Z")
  firedAt!: Date;

  @Required()
  @Nullable(Date)
  @Format("date-time")
  @Description("The first clearing reading (threshold) or the next arrival (no_data); null: still open at the end of the range")
  @Example("2026-03-02T14:40:00Z")
  resolvedAt!: Date | null;

  @Required()
  @Nullable(Date)
  @Format("date-time")
  @Description("Always null: a backtest sees every reading at once, so no late reading retracts an episode")
  @Example(null)
  retractedAt!: Date | null;

  @Required()
  @Nullable(Number)
  @Description("The most extreme temperature of the run (null for no_data)")
  @Example(9.4)
  peakTemperatureCelsius!: number | null;

  @Required()
  @Integer()
  @Description("Violating readings in the episode, from the run's first (0 for no_data)")
  @Example(71)
  readingCount!: number;

  @Required()
  @Nullable(Number)
  @Description("Temperature of the reading that fired it (null for no_data)")
  @Example(8.3)
  temperatureCelsius!: number | null;

  @Required()
  @Nullable(Date)
  @Format("date-time")
  @Description("no_data: the device's last arrival before the silence (or `from`); null for threshold")
  @Example(null)
  silentSince!: Date | null;
}

export class BacktestResult {
  @Required()
  @CollectionOf(BacktestEpisode)
  @Description("Oldest first")
  episodes!: BacktestEpisode[];

  @Required()
  @Description(
    "The time the condition held, summed over the episodes: from breachStartedAt (threshold) or silentSince (no_data) to resolvedAt, or to the end of the evaluation (the earlier of `to` and now) for an episode still open. Includes the forSeconds before an episode fired and the hysteresis band before it resolved"
  )
  @Example(2400)
  totalBreachSeconds!: number;

  @Required()
  @Integer()
  @Description("Readings the rule looked at: those recorded in [from, to) (threshold), or the arrivals counted (no_data)")
  @Example(20160)
  readingsEvaluated!: number;
}
