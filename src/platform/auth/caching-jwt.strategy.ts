import type {Request} from "express";
import {type JwtFromRequestFunction, Strategy, type StrategyOptionsWithRequest, type VerifyCallbackWithRequest} from "passport-jwt";
import type {AuthUser} from "./auth-user.js";
import {VerifiedTokenCache} from "./verified-token-cache.js";

/** RFC 6750's challenges: they say a bearer token is wanted, and whether the one sent was refused, never why. */
export const BEARER_CHALLENGE = 'Bearer realm="smart-thermo"';
export const INVALID_TOKEN_CHALLENGE = 'Bearer realm="smart-thermo", error="invalid_token"';

/**
 * passport-jwt's Strategy with VerifiedTokenCache in front of its signature check: a token
 * verified before (and the caller its protocol made of it) is answered from memory until the
 * token expires, without a key lookup, an RS256 verification or the protocol's $onVerify. Only
 * a token that passport-jwt verified and the protocol accepted is remembered.
 *
 * A refused request fails with one of RFC 6750's challenges, which passport puts in
 * `WWW-Authenticate` before answering 401.
 */
export class CachingJwtStrategy extends Strategy {
  private readonly verified: VerifiedTokenCache<{exp: number; user: AuthUser}>;
  private readonly tokenOf: JwtFromRequestFunction;

  constructor(options: StrategyOptionsWithRequest, verify: VerifyCallbackWithRequest) {
    const verified = new VerifiedTokenCache<{exp: number; user: AuthUser}>();
    // passport-jwt calls this only for a token whose signature and claims it has just verified.
    super(options, (req, payload, done) =>
      verify(req, payload, (error, user, info) => {
        const token = options.jwtFromRequest(req);
        if (!error && user && token) verified.set(token, {exp: payload.exp as number, user: user as AuthUser});
        done(error, user, info);
      })
    );
    this.verified = verified;
    this.tokenOf = options.jwtFromRequest;
  }

  override authenticate(req: Request, options?: object): void {
    const token = this.tokenOf(req);
    if (!token) return this.fail(BEARER_CHALLENGE, 401);
    const known = this.verified.get(token);
    if (known) return this.success(known.user);
    // passport-jwt fails with an Error, which gives passport no challenge to send. `this` is the
    // object passport made for this one request (its own fail, success, error), so this
    // replacement does not outlive the request.
    const fail = this.fail.bind(this);
    this.fail = () => fail(INVALID_TOKEN_CHALLENGE, 401);
    super.authenticate(req, options);
  }
}
