import {Inject} from "@tsed/di";
import {Unauthorized} from "@tsed/exceptions";
import {Middleware, type MiddlewareMethods} from "@tsed/platform-middlewares";
import {Context} from "@tsed/platform-params";
import {AccessTokenVerifier} from "./access-token-verifier.js";
import type {AuthUser} from "./auth-user.js";

/** Where BearerAuthMiddleware leaves the verified caller in the request's context. */
export const VERIFIED_CALLER = "smart-thermo:verifiedCaller";

const BEARER = /^Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/i;

/**
 * `Authorization: Bearer <access token>` on the routes that need a user (the Authenticated
 * decorator puts it there, and only there): a public route pays nothing for authentication. A
 * missing or invalid token is a 401 with RFC 6750's `WWW-Authenticate`, which does not say what
 * was wrong with the token. (passport and @tsed/passport did this before, at the price of a
 * `passport.initialize()` on every request, the probes included: jose does the verification.)
 */
@Middleware()
export class BearerAuthMiddleware implements MiddlewareMethods {
  @Inject()
  private verifier!: AccessTokenVerifier;

  async use(@Context() $ctx: Context) {
    const header = $ctx.request.headers.authorization;
    const token = typeof header === "string" ? BEARER.exec(header)?.[1] : undefined;
    const user: AuthUser | undefined = token ? await this.verifier.verify(token) : undefined;
    if (!user) {
      const unauthorized = new Unauthorized(token ? "Invalid bearer token" : "Missing bearer token");
      unauthorized.setHeaders({
        "WWW-Authenticate": token ? 'Bearer realm="smart-thermo", error="invalid_token"' : 'Bearer realm="smart-thermo"'
      });
      throw unauthorized;
    }
    $ctx.set(VERIFIED_CALLER, user);
  }
}
