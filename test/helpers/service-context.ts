import {DIContext, inject, runInContext} from "@tsed/common";
import type {AuthUser} from "../../src/platform/auth/auth-user.js";
import {TenantContext} from "../../src/platform/tenancy/tenant-context.js";
import {TenantProvisionerService} from "../../src/platform/tenancy/tenant-provisioner.service.js";

/**
 * Runs `task` the way a request of `tenant` runs (a DI context of its own with the tenant and a
 * caller bound), so that specs can call services directly on the real database, as immich's
 * "medium" tests do, where an HTTP test would only reach the rule through a route.
 */
export async function asTenant<T>(tenant: string, task: () => Promise<T>, user: Partial<AuthUser> = {}): Promise<T> {
  await inject(TenantProvisionerService).ensure(tenant);
  return runInContext(new DIContext({id: `service-test-${tenant}`}), () => {
    inject(TenantContext).bind(tenant, {subject: `service-test-${tenant}`, tenantClaim: tenant, role: "admin", ...user});
    return task();
  });
}
