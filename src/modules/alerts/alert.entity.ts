import {BigIntType, Entity, Enum, Index, ManyToOne, Property} from "@mikro-orm/core";
import {Description, Enum as JsonEnum, Example, Format, Integer, Nullable, ReadOnly, Required} from "@tsed/schema";
import {BaseEntity} from "../../common/base.entity.js";
import {Device} from "../devices/device.entity.js";
import {User} from "../users/user.entity.js";
import {AlertRule, AlertSeverity} from "./alert-rule.entity.js";

/**
 * One episode of a rule being violated (docs/api.md, "Alerts"). A threshold episode: a run of
 * violating readings that lasted the rule's forSeconds, extended by later violating readings,
 * resolved by the first clearing reading; retracted (kept, with `retractedAt`) when a late reading
 * leaves its run too short. A no_data episode: a silence of the device longer than the rule's
 * silenceSeconds, resolved by its next arrival. The partial unique index `alerts_one_open_per_rule`
 * (tenant migration) allows at most one open (neither resolved nor retracted) alert per rule.
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

  @Enum({items: () => AlertSeverity, nativeEnumName: undefined, default: AlertSeverity.WARNING})
  @ReadOnly()
  @Required()
  @JsonEnum(AlertSeverity)
  @Description("The rule's severity when the alert fired")
  @Example("critical")
  severity: AlertSeverity = AlertSeverity.WARNING;

  @Property({type: "double", nullable: true})
  @ReadOnly()
  @Required()
  @Nullable(Number)
  @Description("Temperature of the reading that fired the episode (null for a no_data alert)")
  @Example(36.4)
  temperatureCelsius!: number | null;

  @Property({type: "datetime"})
  @ReadOnly()
  @Required()
  @Format("date-time")
  @Description("When the condition began: recordedAt of the first violating reading of the run, or, for a no_data alert, silentSince")
  breachStartedAt!: Date;

  @Property({type: "datetime"})
  @ReadOnly()
  @Required()
  @Format("date-time")
  @Description(
    "When the alert fired: recordedAt of the reading with which the run had lasted the rule's forSeconds; for a no_data alert, silentSince + silenceSeconds"
  )
  firedAt!: Date;

  @Property({type: "datetime", nullable: true})
  @ReadOnly()
  @Required()
  @Nullable(Date)
  @Format("date-time")
  @Description("no_data alerts: the device's last arrival before the silence (or when the rule began watching); null for threshold alerts")
  silentSince?: Date | null;

  @Property({type: "datetime", nullable: true})
  @ReadOnly()
  @Required()
  @Nullable(Date)
  @Format("date-time")
  @Description("recordedAt of the latest violating reading (null for a no_data alert)")
  lastReadingAt!: Date | null;

  @Property({type: "double", nullable: true})
  @ReadOnly()
  @Required()
  @Nullable(Number)
  @Description("The most extreme temperature of the run (highest for `above`, lowest for `below`); null for a no_data alert")
  @Example(37.1)
  peakTemperatureCelsius!: number | null;

  @Property({type: "integer", default: 1})
  @ReadOnly()
  @Required()
  @Integer()
  @Description("Violating readings in the episode, from the run's first (0 for a no_data alert)")
  @Example(240)
  readingCount: number = 1;

  @Property({type: "datetime", nullable: true})
  @ReadOnly()
  @Required()
  @Nullable(Date)
  @Format("date-time")
  @Description(
    "recordedAt of the first clearing reading (no_data: the server time of the next arrival), or when the rule was disabled, changed or deleted; null while open"
  )
  resolvedAt?: Date | null;

  @Property({type: "datetime", nullable: true})
  @ReadOnly()
  @Required()
  @Nullable(Date)
  @Format("date-time")
  @Description(
    "When a late reading left the run shorter than the rule's forSeconds: the alert should not have fired, and is kept for the record; a retracted alert is not open"
  )
  retractedAt?: Date | null;

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

  @Property({type: "text", nullable: true})
  @ReadOnly()
  @Required()
  @Nullable(String)
  @Description("The comment given with the acknowledgement, if any")
  @Example("Door was left open during a delivery; closed it.")
  acknowledgementComment?: string | null;

  @Property({type: "integer", default: 1})
  @ReadOnly()
  @Required()
  @Integer()
  @Description("Increases by one with every change of the alert: of two copies (say, two events), the higher version is the newer")
  @Example(3)
  version: number = 1;
}
