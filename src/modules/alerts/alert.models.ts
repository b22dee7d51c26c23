import {Description, Property} from "@tsed/schema";
import type {AlertRule} from "./alert-rule.entity.js";

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
export const ALERT_RULE_UPDATABLE = ["condition", "thresholdCelsius", "isEnabled"] as const satisfies readonly (keyof AlertRule)[];
