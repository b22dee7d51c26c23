import {AggregationController} from "./aggregation.controller.js";
import {ExplainController} from "./explain.controller.js";
import {TenantSettingsController} from "./tenant-settings.controller.js";

/** Admin controllers (role `admin`), mounted under /api/v1. */
export const adminControllers: unknown[] = [TenantSettingsController, AggregationController, ExplainController];
