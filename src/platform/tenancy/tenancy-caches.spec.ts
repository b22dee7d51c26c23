import {AsyncLocalStorage} from "node:async_hooks";
import v8 from "node:v8";
import vm from "node:vm";
import {describe, expect, it} from "vitest";
import {TenantProvisionerService} from "./tenant-provisioner.service.js";
import {TenantSettingsCache} from "./tenant-settings.cache.js";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/**
 * Whether `remember` (called inside a request-like async context holding a large object) leaves
 * that context reachable once the call has settled: the object stands for a request's response
 * and entity managers, which the process must not keep per tenant.
 */
async function keepsContext(remember: () => Promise<unknown>): Promise<boolean> {
  const storage = new AsyncLocalStorage<{request: Uint8Array}>();
  let ref!: WeakRef<object>;
  await (async () => {
    const request = {request: new Uint8Array(1 << 20)};
    ref = new WeakRef(request);
    await storage.run(request, remember);
  })();
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  return ref.deref() !== undefined;
}

describe("per-tenant memory of the tenancy caches", () => {
  it("TenantSettingsCache keeps the settings, not the async context of the request that read them", async () => {
    // (@Inject makes `registry` a getter: the stand-in registry is defined over it.)
    const registry = (settingsOf: () => Promise<unknown>) => ({value: {settingsOf}, configurable: true});
    const cache = Object.defineProperty(
      new TenantSettingsCache(),
      "registry",
      registry(async () => ({timezone: "Europe/Berlin", rawRetentionDays: 30}))
    );
    expect(await keepsContext(() => cache.get("tenant_a"))).toBe(false);
    // Still cached: a second read asks the registry nothing.
    Object.defineProperty(
      cache,
      "registry",
      registry(() => Promise.reject(new Error("not cached")))
    );
    expect(await cache.get("tenant_a")).toEqual({timezone: "Europe/Berlin", rawRetentionDays: 30});
  });

  it("TenantProvisionerService remembers a ready tenant, not the async context of the request that provisioned it", async () => {
    let provisioned = 0;
    const service = new TenantProvisionerService();
    // (provision is private: the stand-in is defined over it.)
    Object.defineProperty(service, "provision", {
      value: async () => {
        provisioned++;
      }
    });
    expect(await keepsContext(() => service.ensure("tenant_a"))).toBe(false);
    await service.ensure("tenant_a");
    expect(provisioned).toBe(1);
  });
});
