import {Inject} from "@tsed/di";
import {Forbidden} from "@tsed/exceptions";
import {Middleware, type MiddlewareMethods} from "@tsed/platform-middlewares";
import {TenantContext} from "../tenancy/tenant-context.js";
import {ADMIN_ROLE} from "./auth-user.js";

@Middleware()
export class AdminOnlyMiddleware implements MiddlewareMethods {
  @Inject()
  private tenantContext!: TenantContext;

  use() {
    if (!this.tenantContext.user.roles.includes(ADMIN_ROLE)) {
      throw new Forbidden(`This route needs the "${ADMIN_ROLE}" role`);
    }
  }
}
