import {Context, Inject, Middleware, type MiddlewareMethods} from "@tsed/common";
import {UnauthorizedError} from "../../common/errors.js";
import {StreamTokenService} from "./stream-token.service.js";

/**
 * In front of the stream's authentication: `?streamToken=` becomes the Authorization header it
 * stands for (see StreamTokenService), so that the usual bearer checks run on it. A request that
 * carries its own Authorization header keeps it.
 */
@Middleware()
export class StreamTokenMiddleware implements MiddlewareMethods {
  @Inject()
  private tokens!: StreamTokenService;

  async use(@Context() $ctx: Context) {
    const request = $ctx.request.raw;
    const streamToken = $ctx.request.query.streamToken;
    if (request.method !== "GET" || streamToken === undefined || request.headers.authorization) return;
    const bearer = typeof streamToken === "string" ? await this.tokens.redeem(streamToken) : undefined;
    if (!bearer) throw new UnauthorizedError("Unknown, expired or already used stream token");
    request.headers.authorization = `Bearer ${bearer}`;
  }
}
