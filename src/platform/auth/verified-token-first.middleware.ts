import {Context, Inject, OverrideProvider} from "@tsed/common";
import {PassportMiddleware} from "@tsed/passport";
import type {Request} from "express";
import {ACCESS_TOKEN_PROTOCOL, AccessTokenVerifier} from "./access-token-verifier.js";
import type {AuthUser} from "./auth-user.js";

/**
 * @tsed/passport's middleware (what @Authorize runs), asking the verified-token cache first: a
 * token verified before, within its lifetime, gets its caller on `req.account` (where passport's
 * authorize puts it) without passport. passport's own machinery costs about 40 µs of CPU per
 * request here (the closures of each authenticate call, the functions it sets on the request,
 * promisify; `npm run bench:profile -- me`), for a token that needs no verification; every other
 * request goes through passport as before.
 */
@OverrideProvider(PassportMiddleware)
export class VerifiedTokenFirstPassportMiddleware extends PassportMiddleware {
  @Inject()
  private verifier!: AccessTokenVerifier;

  override async use(@Context() $ctx: Context): Promise<void> {
    const request = $ctx.request.raw as Request & {account?: AuthUser};
    const {protocol} = $ctx.endpoint.store.get<{protocol: string | string[]}>(PassportMiddleware);
    const caller = [protocol].flat().includes(ACCESS_TOKEN_PROTOCOL) ? this.verifier.verifiedCaller(request) : undefined;
    if (caller) request.account = caller;
    else await super.use($ctx);
  }
}
