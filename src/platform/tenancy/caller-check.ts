import type {AuthUser} from "../auth/auth-user.js";

/** DI type of the checks every authenticated request passes once its tenant is bound (see CallerCheck). */
export const CALLER_CHECK = Symbol.for("smart-thermo:CallerCheck");

/**
 * A feature's say on whether the caller of a request may proceed at all, whatever the route (the
 * users feature refuses a deleted user). Runs in TenantContextMiddleware, after the tenant is
 * bound; it throws a domain error (e.g. ForbiddenError) to refuse. Declared with
 * `@Injectable({type: CALLER_CHECK})`: platform code knows no feature's rule.
 */
export interface CallerCheck {
  check(tenantId: string, user: AuthUser): Promise<void>;
}
