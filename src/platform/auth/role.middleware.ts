import {Context, Inject, Middleware, type MiddlewareMethods} from "@tsed/common";
import {ForbiddenError} from "../../common/errors.js";
import type {Role} from "../../config/app-config.js";
import {TenantContext} from "../tenancy/tenant-context.js";
import {hasRole} from "./auth-user.js";

/** Where the Authenticated decorator records the role an operation needs. */
export const REQUIRED_ROLE = "smart-thermo:requiredRole";

/** Refuses a caller whose role is weaker than the operation's (403), after the tenant is bound. */
@Middleware()
export class RoleMiddleware implements MiddlewareMethods {
  @Inject()
  private tenantContext!: TenantContext;

  use(@Context() $ctx: Context) {
    const required = $ctx.endpoint.store.get<Role>(REQUIRED_ROLE);
    const {role} = this.tenantContext.user;
    if (!required || !hasRole(role, required))
      throw new ForbiddenError(`This operation needs the "${required ?? "admin"}" role (the token's is "${role}")`);
  }
}
