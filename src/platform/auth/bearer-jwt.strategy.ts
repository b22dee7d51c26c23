import type {Request} from "express";
import {type JwtFromRequestFunction, Strategy, type StrategyOptionsWithRequest, type VerifyCallbackWithRequest} from "passport-jwt";

/** RFC 6750's challenges: they say a bearer token is wanted, and whether the one sent was refused, never why. */
export const BEARER_CHALLENGE = 'Bearer realm="smart-thermo"';
export const INVALID_TOKEN_CHALLENGE = 'Bearer realm="smart-thermo", error="invalid_token"';

/**
 * passport-jwt's Strategy, failing with one of RFC 6750's challenges, which passport puts in
 * `WWW-Authenticate` before answering 401. passport-jwt itself fails with an Error ("No auth
 * token", "invalid signature", ...): passport then has no challenge to send, and the reason is
 * more than a client needs to know.
 */
export class BearerJwtStrategy extends Strategy {
  private readonly tokenOf: JwtFromRequestFunction;

  constructor(options: StrategyOptionsWithRequest, verify: VerifyCallbackWithRequest) {
    super(options, verify);
    this.tokenOf = options.jwtFromRequest;
  }

  override authenticate(req: Request, options?: object): void {
    const challenge = this.tokenOf(req) ? INVALID_TOKEN_CHALLENGE : BEARER_CHALLENGE;
    // `this` is the object passport made for this one request (its own fail, success, error):
    // the replacement does not outlive the request.
    const fail = this.fail.bind(this);
    this.fail = () => fail(challenge, 401);
    super.authenticate(req, options);
  }
}
