import {Inject, Logger, Req} from "@tsed/common";
import {Arg, type BeforeInstall, type OnVerify, Protocol} from "@tsed/passport";
import type {Request} from "express";
import {JwksClient} from "jwks-rsa";
import {ExtractJwt, type SecretOrKeyProvider, type StrategyOptionsWithRequest} from "passport-jwt";
import {AppConfig} from "../../config/app-config.js";
import {type AccessTokenPayload, type AuthUser, toAuthUser} from "./auth-user.js";
import {BearerJwtStrategy} from "./bearer-jwt.strategy.js";
import {JwksKeySet} from "./jwks-key-set.js";
import {VerifiedTokenCache} from "./verified-token-cache.js";

/** The @tsed/passport protocol (and passport strategy) name of bearer access tokens. */
export const ACCESS_TOKEN_PROTOCOL = "jwt";

/** The token of a request: from `Authorization: Bearer <token>` only, never a query, body or cookie. */
const tokenOf = ExtractJwt.fromAuthHeaderAsBearerToken();

/** How long a fetched JWKS is trusted before it is fetched again (a key rotated away stops working then). */
export const JWKS_MAX_AGE_MS = 10 * 60_000;
/** At most one JWKS fetch per this long for a `kid` the set does not have, whatever the number of such tokens. */
export const JWKS_COOLDOWN_MS = 30_000;

/**
 * Bearer access tokens, through @tsed/passport and passport-jwt: the token from the
 * `Authorization: Bearer` header only; RS256 only, the configured issuer and audience, `exp` (5 s
 * of clock tolerance) checked by passport-jwt (jsonwebtoken); the key named by the header's `kid`
 * from the issuer's JWKS through jwks-rsa (JwksKeySet, which a flood of unknown key ids cannot
 * starve); then $onVerify refuses what is not an access token (toAuthUser) and remembers the
 * caller of the token it accepts (VerifiedTokenCache): `verifiedCaller` answers that token again
 * until it expires, which the Authorize middleware asks before it runs passport at all
 * (VerifiedTokenFirstPassportMiddleware).
 *
 * The issuer, audience and JWKS come from AppConfig in $beforeInstall, so a test can point them
 * at its own JWKS.
 */
@Protocol<Partial<StrategyOptionsWithRequest>>({
  name: ACCESS_TOKEN_PROTOCOL,
  useStrategy: BearerJwtStrategy,
  settings: {
    jwtFromRequest: tokenOf,
    algorithms: ["RS256"]
  }
})
export class AccessTokenVerifier implements BeforeInstall, OnVerify {
  private readonly verified = new VerifiedTokenCache<{exp: number; user: AuthUser}>();

  @Inject()
  private config!: AppConfig;

  @Inject()
  private logger!: Logger;

  $beforeInstall(settings: StrategyOptionsWithRequest): StrategyOptionsWithRequest {
    const {auth} = this.config;
    // jwks-rsa's own cache and rate limit stay off: JwksKeySet says why.
    const client = new JwksClient({jwksUri: auth.jwksUri, cache: false, rateLimit: false, timeout: 5_000});
    const keys = new JwksKeySet(client, {
      cooldownMs: JWKS_COOLDOWN_MS,
      maxAgeMs: JWKS_MAX_AGE_MS,
      onFetchError: (error) => this.logger.warn({event: "JWKS_FETCH_FAILED", jwks_uri: auth.jwksUri, error_message: String(error)})
    });
    return {
      ...settings,
      issuer: auth.issuer,
      audience: auth.audience,
      algorithms: ["RS256"],
      jsonWebTokenOptions: {clockTolerance: 5},
      secretOrKeyProvider: keyByKid(keys)
    };
  }

  /** The caller of a token passport-jwt has just verified, or `false` (401) for a token that is not an access token. */
  $onVerify(@Req() req: Request, @Arg(0) payload: AccessTokenPayload): AuthUser | false {
    const {auth} = this.config;
    const user = toAuthUser(payload, auth.tenantClaim, auth.defaultRole);
    const token = tokenOf(req);
    if (user && token) this.verified.set(token, {exp: payload.exp as number, user});
    return user ?? false;
  }

  /** The caller of the request's token when that exact token was verified before and has not expired. */
  verifiedCaller(req: Request): AuthUser | undefined {
    const token = tokenOf(req);
    return token ? this.verified.get(token)?.user : undefined;
  }
}

/**
 * passport-jwt's key lookup: the header must name an RS256 key by `kid` (a token without one is
 * refused even when the set holds a single key); the key comes from the set. jsonwebtoken takes
 * the KeyObject as it is, so no key is parsed per token.
 */
function keyByKid(keys: JwksKeySet): SecretOrKeyProvider {
  return (_request, rawJwtToken, done) => {
    const header = decodeHeader(rawJwtToken);
    if (typeof header?.kid !== "string" || header.alg !== "RS256") return done(new Error("the token header names no RS256 key (kid)"));
    keys.get(header.kid).then(
      (key) => (key ? done(null, key as unknown as string) : done(new Error("no such key in the issuer's JWKS"))),
      (error: unknown) => done(error)
    );
  };
}

function decodeHeader(token: unknown): {kid?: unknown; alg?: unknown} | undefined {
  if (typeof token !== "string") return undefined;
  try {
    const header: unknown = JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString("utf8"));
    return header && typeof header === "object" ? header : undefined;
  } catch {
    return undefined;
  }
}
