import {BigIntType, Entity, Index, ManyToOne, Property} from "@mikro-orm/core";
import {Description, Example, Format, Integer, Nullable, ReadOnly, Required} from "@tsed/schema";
import {BaseEntity} from "../../common/base.entity.js";
import {Device} from "../devices/device.entity.js";
import {User} from "../users/user.entity.js";
import {AlertRule} from "./alert-rule.entity.js";

/**
 * One episode of a rule being violated: opened by the first violating reading, updated by the
 * next ones, resolved by the first reading back inside the threshold. The partial unique index
 * `alerts_one_open_per_rule` (tenant migration) allows at most one open alert per rule.
 */
@Entity({tableName: "alerts", schema: "*"})
@Index({name: "alerts_device_fired_at_index", properties: ["deviceId", "firedAt"]})
export class Alert extends BaseEntity {
  @ManyToOne(() => AlertRule, {mapToPk: true, fieldName: "rule_id", deleteRule: "cascade"})
  @ReadOnly()
  @Required()
  @Format("uuid")
  @Description("The rule this is an episode of")
  ruleId!: string;

  @ManyToOne(() => Device, {mapToPk: true, fieldName: "device_id", deleteRule: "cascade"})
  @ReadOnly()
  @Required()
  @Format("uuid")
  deviceId!: string;

  // A plain column, not a relation: alerts know readings by id only (the readings feature depends on alerts, not the reverse).
  @Property({fieldName: "reading_id", type: new BigIntType("string"), nullable: true})
  @ReadOnly()
  @Required()
  @Nullable(String)
  @Description("The reading that opened the episode")
  readingId?: string | null;

  @Property({type: "double"})
  @ReadOnly()
  @Required()
  @Description("Temperature of the reading that opened the episode")
  @Example(36.4)
  temperatureCelsius!: number;

  @Property({type: "datetime"})
  @ReadOnly()
  @Required()
  @Format("date-time")
  @Description("recordedAt of the reading that opened the episode")
  firedAt!: Date;

  @Property({type: "datetime"})
  @ReadOnly()
  @Required()
  @Format("date-time")
  @Description("recordedAt of the latest violating reading")
  lastReadingAt!: Date;

  @Property({type: "double"})
  @ReadOnly()
  @Required()
  @Description("The most extreme temperature of the episode (highest for `above`, lowest for `below`)")
  @Example(37.1)
  peakTemperatureCelsius!: number;

  @Property({type: "integer", default: 1})
  @ReadOnly()
  @Required()
  @Integer()
  @Description("Violating readings in the episode")
  @Example(240)
  readingCount: number = 1;

  @Property({type: "datetime", nullable: true})
  @ReadOnly()
  @Required()
  @Nullable(Date)
  @Format("date-time")
  @Description(
    "recordedAt of the first reading back inside the threshold (or when the rule was disabled or its condition changed); null while open"
  )
  resolvedAt?: Date | null;

  @Property({type: "datetime", nullable: true})
  @ReadOnly()
  @Required()
  @Nullable(Date)
  @Format("date-time")
  @Description("When it was first acknowledged; null until then")
  acknowledgedAt?: Date | null;

  @ManyToOne(() => User, {mapToPk: true, fieldName: "acknowledged_by_id", nullable: true, deleteRule: "set null"})
  @ReadOnly()
  @Required()
  @Nullable(String)
  @Description("The user who acknowledged the alert")
  acknowledgedById?: string | null;
}
