import {decorateMethodsOf, useDecorators} from "@tsed/core";
import {Authorize, PassportMiddleware} from "@tsed/passport";
import {UseBefore} from "@tsed/common";
import {JsonEntityStore, Returns, Security} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import type {Role} from "../../config/app-config.js";
import {documentCommonStatuses} from "../http/documented-statuses.js";
import {TenantReadRateLimitMiddleware} from "../rate-limit/tenant-read-rate-limit.middleware.js";
import {TenantContextMiddleware} from "../tenancy/tenant-context.middleware.js";
import {ACCESS_TOKEN_PROTOCOL} from "./access-token-verifier.js";
import {REQUIRED_ROLE, RoleMiddleware} from "./role.middleware.js";

export const BEARER_SCHEME = "bearer";

/** The OpenAPI extension that names the role each operation needs. */
export const ROLE_EXTENSION = "x-required-role";

/**
 * Every tenant controller, on the class: who may call each of its operations, decided in this one
 * place so that a route added later cannot forget it. In order: a verified bearer token
 * (@Authorize: passport with AccessTokenVerifier's protocol), the tenant bound from its claim (and the caller checked, e.g. not deleted), the
 * role, and for reads the tenant's read budget; then the operation's own middlewares.
 *
 * The role (README "Who may do what"): `options.role` when given (`admin` for /admin routes),
 * else `viewer` for GET operations and `operator` for the others. The OpenAPI document shows it
 * on each operation (`x-required-role`, and its 403), next to every status the operation can answer.
 */
export function Authenticated(options: {role?: Role} = {}) {
  return (target: new (...args: never[]) => object): void => {
    // useDecorators applies its list bottom-up, like stacked decorators.
    decorateMethodsOf(
      target,
      useDecorators(
        UseBefore(RoleMiddleware),
        UseBefore(TenantContextMiddleware),
        // The protocol as a list: with one name, @tsed/passport would let a `protocol` query or body
        // field name another one (and answer 401 to a valid token).
        Authorize([ACCESS_TOKEN_PROTOCOL], {session: false, originalUrl: false}),
        Security(BEARER_SCHEME),
        Returns(401, ErrorBody).Description("Missing, malformed, expired or untrusted bearer token, or not an access token")
      )
    );
    const first = [PassportMiddleware, TenantContextMiddleware, RoleMiddleware, TenantReadRateLimitMiddleware] as unknown[];
    for (const name of Object.getOwnPropertyNames(target.prototype)) {
      const descriptor = Object.getOwnPropertyDescriptor(target.prototype, name);
      if (name === "constructor" || typeof descriptor?.value !== "function") continue;
      const endpoint = JsonEntityStore.fromMethod(target, name);
      const reads = [...endpoint.operationPaths.values()].every((path) => path.method.toUpperCase() === "GET");
      const role: Role = options.role ?? (reads ? "viewer" : "operator");
      endpoint.store.set(REQUIRED_ROLE, role);
      endpoint.operation.set(ROLE_EXTENSION, role);
      Returns(403, ErrorBody).Description(
        `Needs the \`${role}\` role or a stronger one; or the token's tenant is not valid (or not registered), or its user was deleted`
      )(target.prototype, name, descriptor);
      if (reads) {
        UseBefore(TenantReadRateLimitMiddleware)(target.prototype, name, descriptor);
        if (!endpoint.operation.getResponses().has("429"))
          Returns(429, ErrorBody).Description("Too many reads of this tenant; see Retry-After")(target.prototype, name, descriptor);
      }
      // Method decorators ran first, so their middlewares (a rate limit, say) sit in front of ours:
      // move authentication to the front, so that everything else sees a verified tenant and role.
      const ours = endpoint.beforeMiddlewares.filter((m) => first.includes(m)).sort((a, b) => first.indexOf(a) - first.indexOf(b));
      endpoint.beforeMiddlewares = [...ours, ...endpoint.beforeMiddlewares.filter((m) => !first.includes(m))];
    }
    documentCommonStatuses(target);
  };
}
