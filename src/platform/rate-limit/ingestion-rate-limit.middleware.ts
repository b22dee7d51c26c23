import {Context, Inject, Middleware, type MiddlewareMethods} from "@tsed/common";
import {DeviceContext} from "../device-auth/device-context.js";
import {TenantContext} from "../tenancy/tenant-context.js";
import {IngestionRateLimiter} from "./ingestion-rate-limiter.js";

/**
 * The ingestion budgets (IngestionRateLimiter) for an HTTP route: the device is the path's
 * `:deviceId` on the user routes, the key's device on a device's own route. Runs after the tenant
 * (and device) are bound.
 */
@Middleware()
export class IngestionRateLimitMiddleware implements MiddlewareMethods {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private device!: DeviceContext;

  @Inject()
  private limiter!: IngestionRateLimiter;

  async use(@Context() $ctx: Context) {
    const deviceId = String($ctx.request.params.deviceId ?? this.device.current?.deviceId ?? "").toLowerCase();
    await this.limiter.consume(this.tenant.tenantId, deviceId);
  }
}
