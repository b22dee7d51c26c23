import {Context, Inject, Middleware, type MiddlewareMethods, UseBefore} from "@tsed/common";
import {useDecorators} from "@tsed/core";
import {TooManyRequestsError} from "../../common/errors.js";
import {AppConfig} from "../../config/app-config.js";
import {TenantContext} from "../tenancy/tenant-context.js";
import {TenantSlots} from "./tenant-slots.js";

/** What a refused export is told to wait: exports last seconds to minutes, so retrying at once would only be refused again. */
export const EXPORT_RETRY_AFTER_S = 10;

/**
 * At most EXPORT_MAX_PER_TENANT streamed exports of one tenant at a time in this process, below
 * the export pool's size (EXPORT_POOL_MAX): one tenant's slow downloads can never hold every
 * export connection, so another tenant's export always finds one. One more is a 429.
 */
@Middleware()
export class ExportSlotMiddleware implements MiddlewareMethods {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private config!: AppConfig;

  private readonly slots = new TenantSlots(() => this.config.export.maxPerTenant);

  use(@Context() $ctx: Context) {
    const release = this.slots.tryTake(this.tenant.tenantId);
    if (!release)
      throw new TooManyRequestsError(
        `This tenant already runs ${this.config.export.maxPerTenant} exports on this instance, the most it may; retry when one has finished`,
        EXPORT_RETRY_AFTER_S
      );
    $ctx.response.raw.once("close", release);
  }
}

/** Marks the operation as a streamed export of the tenant (ExportSlotMiddleware); its 429 is documented on the route. */
export function ExportSlot(): MethodDecorator {
  return useDecorators(UseBefore(ExportSlotMiddleware)) as MethodDecorator;
}
