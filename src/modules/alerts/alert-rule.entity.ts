import {Entity, Enum, ManyToOne, Property} from "@mikro-orm/core";
import {
  Default,
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

/** Fires when a reading of its device is above (or below) the threshold. */
@Entity({tableName: "alert_rules", schema: "*"})
@JsonNumbers("thresholdCelsius")
export class AlertRule extends BaseEntity<"isEnabled" | "evaluatedFrom" | "archivedAt"> {
  @ManyToOne(() => Device, {mapToPk: true, fieldName: "device_id", deleteRule: "cascade"})
  @Groups("!create", "!update")
  @ReadOnly()
  @Required()
  @Format("uuid")
  deviceId!: string;

  @Enum({items: () => AlertCondition, nativeEnumName: undefined})
  @Required()
  @JsonEnum(AlertCondition)
  @Description("`above`: fires when temperature > threshold; `below`: when temperature < threshold")
  @Example("above")
  condition!: AlertCondition;

  @Property({type: "double"})
  @Required()
  @Minimum(MIN_TEMPERATURE_CELSIUS)
  @Maximum(MAX_TEMPERATURE_CELSIUS)
  @Description("Threshold in degrees Celsius")
  @Example(30)
  thresholdCelsius!: number;

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
