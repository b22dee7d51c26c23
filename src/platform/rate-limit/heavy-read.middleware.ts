import {Context, Inject, Middleware, type MiddlewareMethods, UseBefore} from "@tsed/common";
import {Returns} from "@tsed/schema";
import {useDecorators} from "@tsed/core";
import {ErrorBody} from "../../common/error-body.model.js";
import {TooManyRequestsError} from "../../common/errors.js";
import {AppConfig} from "../../config/app-config.js";
import {TenantContext} from "../tenancy/tenant-context.js";
import {TenantSlots} from "./tenant-slots.js";

/**
 * At most TENANT_HEAVY_READS database-heavy reads (scans of a device's history, hourly groupings,
 * plans, exports) of one tenant at a time in this process; one more is a 429. All tenants share
 * one connection pool: a tenant firing many such reads at once would otherwise hold all of it.
 * Counted per process, since what it protects (the pool) is per process.
 */
@Middleware()
export class HeavyReadMiddleware implements MiddlewareMethods {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private config!: AppConfig;

  private readonly slots = new TenantSlots(() => this.config.rateLimit.tenantHeavyReads);

  use(@Context() $ctx: Context) {
    const release = this.slots.tryTake(this.tenant.tenantId);
    if (!release) throw new TooManyRequestsError("Too many heavy reads of this tenant at once; retry in a moment", 1);
    // "close" comes once the response is sent or the client went away, whichever happens.
    $ctx.response.raw.once("close", release);
  }
}

/** Marks an operation as a database-heavy read of the tenant (HeavyReadMiddleware). */
export function HeavyRead(): MethodDecorator {
  return useDecorators(
    UseBefore(HeavyReadMiddleware),
    Returns(429, ErrorBody).Description("Too many reads of this tenant (per minute, or heavy ones at once); see Retry-After")
  ) as MethodDecorator;
}
