import {DIContext, inject, runInContext} from "@tsed/common";
import {TenantContext} from "./tenant-context.js";

let scopes = 0;

/**
 * Runs `task` in a DI context of its own bound to the tenant (and a MikroORM request context for
 * every ORM), like a request of that tenant: for work that starts outside any request, such as
 * the MQTT group commit. Must be called outside a DI context (inside one, @tsed/di reuses it).
 */
export async function runAsTenant<T>(tenantId: string, task: () => Promise<T>): Promise<T> {
  return await runInContext<Promise<T>>(new DIContext({id: `tenant-task-${++scopes}`}), () => {
    inject(TenantContext).bind(tenantId);
    return task();
  });
}
