import {CollectionOf, Description, Integer, Property, Required} from "@tsed/schema";
import {AlertRule} from "./alert-rule.entity.js";

/** `?acknowledged=&open=` of the alert list; an absent filter matches both. */
export class AlertQuery {
  @Property()
  @Description("true: only acknowledged alerts; false: only unacknowledged ones")
  acknowledged?: boolean;

  @Property()
  @Description("true: only open alerts (not resolved); false: only resolved ones")
  open?: boolean;
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

export class AlertRulePage {
  @Required() @CollectionOf(AlertRule) @Description("Oldest first") items!: AlertRule[];
  @Required() @Integer() total!: number;
  @Required() @Integer() page!: number;
  @Required() @Integer() pageSize!: number;
}
