import type {Feature} from "../../common/feature.js";
import {TenantSettingsController} from "./tenant-settings.controller.js";

/** The caller's tenant's settings (admin routes under /admin/tenant). */
export const tenantsFeature: Feature = {
  name: "tenants",
  controllers: [TenantSettingsController]
};
