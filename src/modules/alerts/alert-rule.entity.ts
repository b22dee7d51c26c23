import {Entity, Enum, ManyToOne, Property} from "@mikro-orm/core";
import {
  Default,
  Integer,
  Description,
  Enum as JsonEnum,
  Example,
  Format,
  Groups,
  Ignore,
  Maximum,
  Minimum,
  Nullable,
  ReadOnly,
  Required,
  RequiredGroups
} from "@tsed/schema";
import {BaseEntity} from "../../common/base.entity.js";
import {Device} from "../devices/device.entity.js";
import {MAX_TEMPERATURE_CELSIUS, MIN_TEMPERATURE_CELSIUS} from "../../common/temperature.js";
import {JsonNumbers} from "../../platform/validation/json-numbers.keyword.js";

export enum AlertCondition {
  ABOVE = "above",
  BELOW = "below"
}

export enum AlertRuleKind {
  THRESHOLD = "threshold",
  NO_DATA = "no_data"
}

export enum AlertSeverity {
  WARNING = "warning",
  CRITICAL = "critical"
}

/** The ranges of the alarm fields (the tenant migration Migration20261206110000_alarms holds the same in CHECKs). */
export const ALARM_LIMITS = {
  forSeconds: {min: 0, max: 86_400},
  clearDeltaCelsius: {min: 0, max: 100},
  silenceSeconds: {min: 60, max: 604_800},
  remindEverySeconds: {min: 300, max: 604_800}
} as const;

/**
 * A device's alarm: a `threshold` rule fires when the device's readings stay beyond the threshold
 * for `forSeconds` and resolves once they are back by `clearDeltaCelsius`; a `no_data` rule fires
 * when the device sends nothing for `silenceSeconds` (docs/api.md, "Alerts").
 */
@Entity({tableName: "alert_rules", schema: "*"})
@JsonNumbers("thresholdCelsius", "clearDeltaCelsius")
export class AlertRule extends BaseEntity<
  | "isEnabled"
  | "evaluatedFrom"
  | "archivedAt"
  | "kind"
  | "forSeconds"
  | "clearDeltaCelsius"
  | "severity"
  | "silenceSeconds"
  | "remindEverySeconds"
> {
  @ManyToOne(() => Device, {mapToPk: true, fieldName: "device_id", deleteRule: "cascade"})
  @Groups("!create", "!update")
  @ReadOnly()
  @Required()
  @Format("uuid")
  deviceId!: string;

  @Enum({items: () => AlertRuleKind, nativeEnumName: undefined, default: AlertRuleKind.THRESHOLD})
  @Default(AlertRuleKind.THRESHOLD)
  @Required()
  @RequiredGroups("!create", "!update")
  @JsonEnum(AlertRuleKind)
  @Description("`threshold` (default): about the readings' temperature; `no_data`: about the device falling silent")
  @Example("threshold")
  kind: AlertRuleKind = AlertRuleKind.THRESHOLD;

  @Enum({items: () => AlertCondition, nativeEnumName: undefined, nullable: true})
  @Required()
  @RequiredGroups("!create", "!update")
  @JsonEnum(AlertCondition, null)
  @Description(
    "Threshold rules (required there; refused on `no_data`): `above` violates when temperature > threshold, `below` when temperature < threshold"
  )
  @Example("above")
  condition!: AlertCondition | null;

  @Property({type: "double", nullable: true})
  @Required()
  @RequiredGroups("!create", "!update")
  @Nullable(Number)
  @Minimum(MIN_TEMPERATURE_CELSIUS)
  @Maximum(MAX_TEMPERATURE_CELSIUS)
  @Description("Threshold in degrees Celsius (threshold rules: required there; refused on `no_data`)")
  @Example(30)
  thresholdCelsius!: number | null;

  @Property({type: "integer", default: 0})
  @Default(0)
  @Required()
  @RequiredGroups("!create", "!update")
  @Integer()
  @Minimum(ALARM_LIMITS.forSeconds.min)
  @Maximum(ALARM_LIMITS.forSeconds.max)
  @Description(
    "Threshold rules: the alert fires only once violating readings have lasted this long without a break (0, the default: at the first one)"
  )
  @Example(300)
  forSeconds: number = 0;

  @Property({type: "double", default: 0})
  @Default(0)
  @Required()
  @RequiredGroups("!create", "!update")
  @Minimum(ALARM_LIMITS.clearDeltaCelsius.min)
  @Maximum(ALARM_LIMITS.clearDeltaCelsius.max)
  @Description(
    "Threshold rules, hysteresis: an open `above T` alert resolves at the first reading ≤ T − clearDeltaCelsius (`below`: ≥ T + clearDeltaCelsius); readings in between keep it open (0, the default: back inside the threshold)"
  )
  @Example(1.5)
  clearDeltaCelsius: number = 0;

  @Enum({items: () => AlertSeverity, nativeEnumName: undefined, default: AlertSeverity.WARNING})
  @Default(AlertSeverity.WARNING)
  @Required()
  @RequiredGroups("!create", "!update")
  @JsonEnum(AlertSeverity)
  @Description("How urgent its alerts are: `warning` (default) or `critical`")
  @Example("critical")
  severity: AlertSeverity = AlertSeverity.WARNING;

  @Property({type: "integer", nullable: true})
  @Required()
  @RequiredGroups("!create", "!update")
  @Nullable(Number)
  @Integer()
  @Minimum(ALARM_LIMITS.silenceSeconds.min)
  @Maximum(ALARM_LIMITS.silenceSeconds.max)
  @Description("`no_data` rules (required there; refused on threshold rules): fires when the device has sent nothing for this long")
  @Example(900)
  silenceSeconds: number | null = null;

  @Property({type: "integer", nullable: true})
  @Required()
  @RequiredGroups("!create", "!update")
  @Nullable(Number)
  @Integer()
  @Minimum(ALARM_LIMITS.remindEverySeconds.min)
  @Maximum(ALARM_LIMITS.remindEverySeconds.max)
  @Description("Send an `alert.reminder` this often while an alert stays open, unacknowledged and not silenced (null, the default: never)")
  @Example(3600)
  remindEverySeconds: number | null = null;

  @Property({default: true})
  @Default(true)
  // Always in responses; optional when creating (defaults to true) or patching.
  @Required()
  @RequiredGroups("!create", "!update")
  @Description("Disabled rules are not evaluated")
  isEnabled!: boolean;

  @Property({type: "datetime", nullable: true})
  @Groups("!create", "!update")
  @ReadOnly()
  @Required()
  @Nullable(Date)
  @Format("date-time")
  @Description(
    "Readings recorded before this instant are not evaluated: when the rule was last enabled again or its condition changed (null: every reading since the rule exists)"
  )
  evaluatedFrom?: Date | null;

  /**
   * When the rule was deleted (`DELETE /alert-rules/{id}` archives it): it is then disabled for
   * good, hidden from rule lists and routes (404) and not counted in the device's cap, while its
   * alerts stay listed. Not part of the API: no answer ever shows an archived rule.
   */
  @Property({type: "datetime", nullable: true})
  @Ignore()
  archivedAt?: Date | null;
}
