import {CollectionOf, Description, Enum, Example, Integer, MaxLength, Nullable, Property, Required} from "@tsed/schema";
import {PageQuery} from "../../common/pagination.model.js";
import {Alert} from "./alert.entity.js";
import {AlertRule, AlertSeverity} from "./alert-rule.entity.js";

/** `?acknowledged=&open=` of the alert list; an absent filter matches both. */
export class AlertQuery {
  @Property()
  @Description("true: only acknowledged alerts; false: only unacknowledged ones")
  acknowledged?: boolean;

  @Property()
  @Description("true: only open alerts (neither resolved nor retracted); false: only resolved or retracted ones")
  open?: boolean;
}

/** `?open=&acknowledged=&severity=&page=&pageSize=` of the tenant's alert list; an absent filter matches all. */
export class TenantAlertQuery extends PageQuery {
  @Property()
  @Description("true: only acknowledged alerts; false: only unacknowledged ones")
  acknowledged?: boolean;

  @Property()
  @Description("true: only open alerts (neither resolved nor retracted); false: only resolved or retracted ones")
  open?: boolean;

  @Enum(AlertSeverity)
  @Description("Only alerts of this severity (the rule's when the alert fired)")
  severity?: AlertSeverity;
}

/** The most characters an acknowledgement's comment may have (the CHECK on alerts.acknowledgement_comment holds the same). */
export const MAX_ACKNOWLEDGEMENT_COMMENT = 500;

/** The optional body of `POST /alerts/{alertId}/acknowledge`. */
export class AcknowledgeBody {
  @Nullable(String)
  @MaxLength(MAX_ACKNOWLEDGEMENT_COMMENT)
  @Description(
    `What was done about the alert, kept with the acknowledgement (at most ${MAX_ACKNOWLEDGEMENT_COMMENT} characters; empty: none)`
  )
  @Example("Door was left open during a delivery; closed it.")
  comment?: string | null;
}

export class AlertPage {
  @Required() @CollectionOf(Alert) @Description("Newest first (by firedAt, then id)") items!: Alert[];
  @Required() @Integer() @Example(42) @Description("Alerts matching the filters, on every page") total!: number;
  @Required() @Integer() @Example(1) page!: number;
  @Required() @Integer() @Example(20) pageSize!: number;
}

/** Fields a client may change with PATCH (the `update` group of AlertRule). */
export const ALERT_RULE_UPDATABLE = [
  "condition",
  "thresholdCelsius",
  "forSeconds",
  "clearDeltaCelsius",
  "severity",
  "silenceSeconds",
  "remindEverySeconds",
  "isEnabled"
] as const satisfies readonly (keyof AlertRule)[];

/** A rule's settings: what a client sets when creating it (its kind, then what PATCH may change). */
export type AlertRuleSettings = Pick<AlertRule, "kind" | (typeof ALERT_RULE_UPDATABLE)[number]>;

export class AlertRulePage {
  @Required() @CollectionOf(AlertRule) @Description("Oldest first") items!: AlertRule[];
  @Required() @Integer() total!: number;
  @Required() @Integer() page!: number;
  @Required() @Integer() pageSize!: number;
}
