import {Inject, Injectable} from "@tsed/di";
import {createRemoteJWKSet, type JWTVerifyGetKey, jwtVerify} from "jose";
import {AppConfig} from "../../config/app-config.js";
import {type AccessTokenPayload, type AuthUser, toAuthUser} from "./auth-user.js";
import {VerifiedTokenCache} from "./verified-token-cache.js";

/** How long a fetched JWKS is trusted before it is fetched again (a key rotated away stops working then). */
export const JWKS_MAX_AGE_MS = 10 * 60_000;
/** At most one JWKS fetch per this long for a `kid` the set does not have, whatever the number of such tokens. */
export const JWKS_COOLDOWN_MS = 30_000;

/**
 * Verifies bearer access tokens with jose: RS256 only, the configured issuer and audience, `exp`
 * (5 s of clock tolerance), a key of the issuer's JWKS named by the header's `kid`; then
 * toAuthUser refuses what is not an access token. The caller of a token verified before comes
 * from VerifiedTokenCache.
 *
 * Keys come from jose's remote JWKS set: keys it has answer at once; a `kid` it lacks makes it
 * refetch the set at most once per JWKS_COOLDOWN_MS and refuses in between without a fetch. So a
 * flood of tokens naming unknown key ids (they need no valid signature to get that far) can
 * neither hammer the identity provider nor use up a refetch budget the real keys need. A token
 * without `kid` is refused even when the set holds a single key.
 */
@Injectable()
export class AccessTokenVerifier {
  private readonly verified = new VerifiedTokenCache<{exp: number; user: AuthUser}>();
  private readonly keys: JWTVerifyGetKey;

  constructor(@Inject(AppConfig) private readonly config: AppConfig) {
    const jwks = createRemoteJWKSet(new URL(config.auth.jwksUri), {
      cooldownDuration: JWKS_COOLDOWN_MS,
      cacheMaxAge: JWKS_MAX_AGE_MS,
      timeoutDuration: 5_000
    });
    this.keys = (header, token) => {
      if (typeof header.kid !== "string") throw new Error("the token header names no key (kid)");
      return jwks(header, token);
    };
  }

  /** The caller of a valid access token, or undefined for any other token (the reason is not told). */
  async verify(token: string): Promise<AuthUser | undefined> {
    const known = this.verified.get(token);
    if (known) return known.user;
    const {auth} = this.config;
    let payload: AccessTokenPayload;
    try {
      ({payload} = await jwtVerify<AccessTokenPayload>(token, this.keys, {
        algorithms: ["RS256"],
        issuer: auth.issuer,
        audience: auth.audience,
        clockTolerance: 5
      }));
    } catch {
      return undefined;
    }
    const user = toAuthUser(payload, auth.tenantClaim, auth.defaultRole);
    if (user) this.verified.set(token, {exp: payload.exp as number, user});
    return user;
  }
}
