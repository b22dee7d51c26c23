import {randomUUID} from "node:crypto";
import {readFileSync} from "node:fs";
import {importJWK, type JWK, SignJWT} from "jose";

const keys = JSON.parse(readFileSync(process.env.TEST_JWT_KEYS_FILE!, "utf8")) as {trusted: JWK; untrusted: JWK};

export interface TokenOptions {
  tenant?: unknown;
  /** Default `["user", "operator"]`: what most specs act as. Without a role of ours a token gets AUTH_DEFAULT_ROLE (viewer). */
  roles?: string[];
  sub?: string;
  issuer?: string;
  audience?: string;
  expiresIn?: number;
  /** Omit `exp` altogether. */
  noExpiry?: boolean;
  kid?: string | null;
  /** Sign with a key the JWKS does not publish. */
  untrustedKey?: boolean;
  claims?: Record<string, unknown>;
}

/** A Keycloak-like RS256 access token, valid unless the options break it on purpose. */
export async function token(options: TokenOptions = {}): Promise<string> {
  const jwk = options.untrustedKey ? keys.untrusted : keys.trusted;
  const claims: Record<string, unknown> = {realm_access: {roles: options.roles ?? ["user", "operator"]}, ...options.claims};
  if (options.tenant !== undefined) claims.tenantId = options.tenant;
  const header: {alg: string; kid?: string; typ: string} = {alg: "RS256", typ: "JWT"};
  if (options.kid !== null) header.kid = options.kid ?? jwk.kid;
  let jwt = new SignJWT(claims)
    .setProtectedHeader(header)
    .setIssuer(options.issuer ?? process.env.AUTH_ISSUER!)
    .setAudience(options.audience ?? process.env.AUTH_AUDIENCE!)
    .setSubject(options.sub ?? `user-${randomUUID()}`)
    .setIssuedAt();
  if (!options.noExpiry) jwt = jwt.setExpirationTime(Math.floor(Date.now() / 1000) + (options.expiresIn ?? 600));
  return jwt.sign(await importJWK(jwk, "RS256"));
}

/** A fresh tenant id per test, so specs never see one another's data. */
export function newTenant(label = "t"): string {
  return `test_${label}_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
}

/** `Authorization` header for a new user of `tenant`. */
export async function bearer(tenant: string, options: Omit<TokenOptions, "tenant"> = {}) {
  return {Authorization: `Bearer ${await token({...options, tenant})}`};
}
