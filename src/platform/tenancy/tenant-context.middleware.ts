import {Context, Inject, Middleware, type MiddlewareMethods} from "@tsed/common";
import {Forbidden, Unauthorized} from "@tsed/exceptions";
import type {AuthUser} from "../auth/auth-user.js";
import {CALLER_CHECK, type CallerCheck} from "./caller-check.js";
import {isValidTenantId} from "./tenant-id.js";
import {TenantContext} from "./tenant-context.js";
import {TenantProvisionerService} from "./tenant-provisioner.service.js";

/**
 * Runs right after token verification: takes the tenant from the verified token only, validates
 * it before it can name a schema, provisions the schema on first sight (or refuses a tenant that
 * is not registered, see TENANT_PROVISIONING), binds the request's entity manager to it, and lets
 * the features' caller checks refuse the caller (a deleted user).
 */
@Middleware()
export class TenantContextMiddleware implements MiddlewareMethods {
  @Inject()
  private provisioner!: TenantProvisionerService;

  @Inject()
  private tenantContext!: TenantContext;

  @Inject(CALLER_CHECK)
  private checks!: CallerCheck[];

  async use(@Context() $ctx: Context) {
    // @Authorize (passport's authorize) leaves the verified caller on req.account.
    const user = ($ctx.request.raw as {account?: AuthUser}).account;
    if (!user) throw new Unauthorized("Missing or invalid bearer token");
    if (!isValidTenantId(user.tenantClaim)) {
      throw new Forbidden("The token carries no valid tenant (lower-case identifier, not a reserved schema)");
    }
    await this.provisioner.ensure(user.tenantClaim);
    this.tenantContext.bind(user.tenantClaim, user);
    for (const check of this.checks) await check.check(user.tenantClaim, user);
  }
}
