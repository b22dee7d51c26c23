import {Inject} from "@tsed/di";
import {Req} from "@tsed/platform-http";
import {Arg, type BeforeInstall, type OnVerify, Protocol} from "@tsed/passport";
import {KeyObject} from "node:crypto";
import {createRemoteJWKSet} from "jose";
import type {Request} from "express";
import {ExtractJwt, type SecretOrKeyProvider, Strategy, type StrategyOptionsWithoutRequest, type StrategyOptionsWithRequest, type VerifyCallbackWithRequest} from "passport-jwt";
import {AppConfig} from "../../config/app-config.js";
import {type AccessTokenPayload, toAuthUser} from "./auth-user.js";

export const JWT_PROTOCOL = "jwt";

/** Verified tokens kept at most this long: no longer than a key that left the JWKS stays in use (JWKS_MAX_AGE_MS). */
export const VERIFIED_TOKEN_MAX_AGE_MS = 5 * 60_000;
export const VERIFIED_TOKEN_MAX_ENTRIES = 10_000;

/**
 * Access tokens whose signature, algorithm, issuer, audience and expiry passport-jwt has verified,
 * by their exact text, with the verified payload: a device posting every 30 s with the same token
 * costs one RS256 verification (≈ 0.1 ms, plus turning the PEM key into a key object each time)
 * every few minutes instead of one per request. Any change to a token changes its text, so a cache
 * hit is a token that was verified before. An entry lasts until the token's `exp` (never longer:
 * no clock tolerance here) and at most `maxAgeMs`; least recently used entries go first beyond
 * `maxEntries`.
 */
export class VerifiedTokenCache {
  private readonly entries = new Map<string, {payload: AccessTokenPayload; expiresAtMs: number}>();

  constructor(
    readonly maxEntries = VERIFIED_TOKEN_MAX_ENTRIES,
    readonly maxAgeMs = VERIFIED_TOKEN_MAX_AGE_MS,
    private readonly now: () => number = Date.now
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(token: string): AccessTokenPayload | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    this.entries.delete(token);
    if (entry.expiresAtMs <= this.now()) return undefined;
    this.entries.set(token, entry); // most recently used last
    return entry.payload;
  }

  set(token: string, payload: AccessTokenPayload): void {
    if (typeof payload.exp !== "number") return;
    const now = this.now();
    const expiresAtMs = Math.min(payload.exp * 1000, now + this.maxAgeMs);
    if (expiresAtMs <= now) return;
    this.entries.delete(token);
    this.entries.set(token, {payload, expiresAtMs});
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }
}

/**
 * passport-jwt's Strategy, remembering verified tokens (VerifiedTokenCache): a token seen and
 * verified before skips the key lookup and the signature check; its payload still goes through
 * the protocol's $onVerify like a freshly verified one.
 */
export class CachingJwtStrategy extends Strategy {
  readonly verifiedTokens = new VerifiedTokenCache();
  private readonly tokenOf: (req: Request) => string | null;
  private readonly onVerified: VerifyCallbackWithRequest;

  constructor(options: StrategyOptionsWithRequest, verify: VerifyCallbackWithRequest) {
    // passport-jwt calls this callback only for a token it has just verified.
    const remember: VerifyCallbackWithRequest = (req, payload, done) => {
      const token = options.jwtFromRequest(req);
      if (token) this.verifiedTokens.set(token, payload as AccessTokenPayload);
      verify(req, payload, done);
    };
    super(options, remember);
    this.tokenOf = options.jwtFromRequest;
    this.onVerified = verify;
  }

  override authenticate(req: Request, options?: object): void {
    const token = this.tokenOf(req);
    const payload = token ? this.verifiedTokens.get(token) : undefined;
    if (!payload) return super.authenticate(req, options);
    try {
      this.onVerified(req, payload, (error, user, info) => (error ? this.error(error) : user ? this.success(user, info) : this.fail(info, 401)));
    } catch (error) {
      this.error(error as Error);
    }
  }
}

/** How long a fetched JWKS is trusted before it is fetched again (a key rotated away stops working then). */
export const JWKS_MAX_AGE_MS = 10 * 60_000;
/** At most one JWKS fetch per this long for a `kid` the set does not have, whatever the number of such tokens. */
export const JWKS_COOLDOWN_MS = 30_000;

/**
 * RS256 access tokens from Keycloak (or the development issuer). passport-jwt checks the
 * signature, algorithm, issuer, audience and expiry; jose's remote JWKS set finds the key by
 * `kid` (JoseKeyProvider); verified tokens are remembered for a few minutes (CachingJwtStrategy);
 * toAuthUser refuses what is not an access token.
 */
@Protocol<StrategyOptionsWithoutRequest>({
  name: JWT_PROTOCOL,
  useStrategy: CachingJwtStrategy,
  settings: {
    jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
    algorithms: ["RS256"]
    // secretOrKeyProvider, issuer and audience come from the configuration in $beforeInstall.
  } as StrategyOptionsWithoutRequest
})
export class JwtProtocol implements OnVerify, BeforeInstall {
  @Inject()
  private config!: AppConfig;

  $beforeInstall(settings: StrategyOptionsWithoutRequest): StrategyOptionsWithoutRequest {
    const {auth} = this.config;
    return {
      ...settings,
      issuer: auth.issuer,
      audience: auth.audience,
      algorithms: ["RS256"],
      jsonWebTokenOptions: {clockTolerance: 5},
      secretOrKeyProvider: joseKeyProvider(new URL(auth.jwksUri))
    };
  }

  $onVerify(@Req() _req: Req, @Arg(0) payload: AccessTokenPayload) {
    // `false` makes @tsed/passport answer 401.
    return toAuthUser(payload, this.config.auth.tenantClaim, this.config.auth.defaultRole) ?? false;
  }
}

/**
 * The verification key of a token, by its `kid`, from the issuer's JWKS through jose's remote
 * JWKS set. Keys it has answer at once; a `kid` it lacks makes it refetch the set at most once per
 * JWKS_COOLDOWN_MS, and refuses in between without a fetch. So a flood of tokens naming unknown
 * key ids (they need no valid signature to reach this point) can neither hammer the identity
 * provider nor use up a refetch budget the real keys need (jwks-rsa's rate limit was one bucket
 * for every lookup, and its cache did not remember a miss). The header must name an RS256 key:
 * a token without `kid` is refused even when the set holds one key.
 */
export function joseKeyProvider(jwksUri: URL): SecretOrKeyProvider {
  const jwks = createRemoteJWKSet(jwksUri, {cooldownDuration: JWKS_COOLDOWN_MS, cacheMaxAge: JWKS_MAX_AGE_MS, timeoutDuration: 5_000});
  return (_request, rawJwtToken, done) => {
    const header = decodeHeader(rawJwtToken);
    if (!header || typeof header.kid !== "string" || header.alg !== "RS256") {
      return done(new Error("token header must name an RS256 key (kid)"));
    }
    jwks({alg: "RS256", kid: header.kid}).then(
      // jsonwebtoken takes a KeyObject, jose gives a WebCrypto key.
      (key) => done(null, KeyObject.from(key) as unknown as string),
      (error: unknown) => done(error as Error)
    );
  };
}

function decodeHeader(token: unknown): {kid?: unknown; alg?: unknown} | undefined {
  if (typeof token !== "string") return undefined;
  try {
    return JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
}
