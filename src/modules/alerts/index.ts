import {AlertRuleController} from "./alert-rule.controller.js";
import {AlertController} from "./alert.controller.js";

/** Controllers of the alerts feature, mounted under /api/v1. */
export const alertControllers: unknown[] = [AlertRuleController, AlertController];
