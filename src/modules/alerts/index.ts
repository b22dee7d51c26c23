import type {Feature} from "../../common/feature.js";
import {retryableUniqueConstraint} from "../../platform/db/retryable-constraint.js";
import {AlertRuleController} from "./alert-rule.controller.js";
import {AlertRule} from "./alert-rule.entity.js";
import {AlertController} from "./alert.controller.js";
import {Alert} from "./alert.entity.js";
import "./alerts.jobs.js";
import {ALERTS_QUEUE} from "./alerts.queue.js";

/**
 * A rule never has two open alerts: two writers racing to open one collide on this partial unique
 * index, and the loser's transaction is retried (it then sees the open alert and extends it).
 */
retryableUniqueConstraint("alerts_one_open_per_rule");

/** Alert rules of devices, the alert episodes they raise, and the no_data sweep. */
export const alertsFeature: Feature = {
  name: "alerts",
  controllers: [AlertRuleController, AlertController],
  tenantEntities: [AlertRule, Alert],
  queues: [ALERTS_QUEUE]
};
