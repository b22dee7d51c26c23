import {decorateMethodsOf, DecoratorTypes, decoratorTypeOf, useDecorators} from "@tsed/core";
import {UseBefore} from "@tsed/platform-middlewares";
import {Authorize, PassportMiddleware} from "@tsed/passport";
import {JsonEntityStore, Returns, Security} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {documentCommonStatuses} from "../http/documented-statuses.js";
import {TenantContextMiddleware} from "../tenancy/tenant-context.middleware.js";
import {AdminOnlyMiddleware} from "./admin-only.middleware.js";
import {JWT_PROTOCOL} from "./jwt.protocol.js";

export const BEARER_SCHEME = "bearer";

/**
 * Every tenant route: a verified bearer token, then the tenant bound from its claim, then
 * (optionally) the admin role, in that order. On a class it decorates each method, because
 * Ts.ED runs class-level middlewares before method-level ones and passport must come first.
 */
export function Authenticated(options: {role?: "admin"} = {}) {
  // useDecorators applies its list bottom-up, like stacked decorators: passport ends up first.
  const perMethod = useDecorators(
    options.role && UseBefore(AdminOnlyMiddleware),
    UseBefore(TenantContextMiddleware),
    Authorize(JWT_PROTOCOL),
    Security(BEARER_SCHEME),
    Returns(401, ErrorBody).Description("Missing, malformed, expired or untrusted bearer token"),
    Returns(403, ErrorBody).Description(options.role ? "The token has no valid tenant or lacks the admin role" : "The token has no valid tenant")
  );
  return (...args: unknown[]): void => {
    if (decoratorTypeOf(args) !== DecoratorTypes.CLASS) return (perMethod as (...a: unknown[]) => void)(...args);
    const target = args[0] as new () => object;
    decorateMethodsOf(target, perMethod);
    // Method decorators ran first, so their middlewares (a rate limit, say) sit in front of ours:
    // move authentication to the front, so that everything else sees a verified tenant.
    const first = [PassportMiddleware, TenantContextMiddleware, AdminOnlyMiddleware];
    for (const name of Object.getOwnPropertyNames(target.prototype)) {
      if (name === "constructor" || typeof Object.getOwnPropertyDescriptor(target.prototype, name)?.value !== "function") continue;
      const endpoint = JsonEntityStore.fromMethod(target, name);
      const ours = endpoint.beforeMiddlewares.filter((m) => first.includes(m as never));
      endpoint.beforeMiddlewares = [...ours, ...endpoint.beforeMiddlewares.filter((m) => !first.includes(m as never))];
    }
    documentCommonStatuses(target);
  };
}
