import {type Role, ROLES} from "../../config/app-config.js";

/** What a verified access token tells us about the caller. */
export interface AuthUser {
  subject: string;
  /** Raw tenant claim; validated by the tenant middleware before it names a schema. */
  tenantClaim: unknown;
  /** The strongest of ROLES the token carries, or AUTH_DEFAULT_ROLE when it carries none. */
  role: Role;
  email?: string;
  name?: string;
}

export interface AccessTokenPayload {
  sub?: unknown;
  exp?: unknown;
  typ?: unknown;
  email?: unknown;
  name?: unknown;
  preferred_username?: unknown;
  realm_access?: {roles?: unknown};
  [claim: string]: unknown;
}

/** Whether `role` may do what `required` allows (ROLES is ordered weakest first). */
export function hasRole(role: Role, required: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(required);
}

/**
 * The caller of a token whose signature, issuer, audience and expiry were verified, or undefined
 * when the token is not one we accept: no subject, no `exp` (jsonwebtoken accepts a token without
 * one; an access token that never expires is refused), or a `typ` claim other than `Bearer` —
 * Keycloak's ID (`ID`) and refresh (`Refresh`) tokens carry the same audience and signature as
 * its access tokens and would otherwise pass for them.
 */
export function toAuthUser(payload: AccessTokenPayload, tenantClaim: string, defaultRole: Role): AuthUser | undefined {
  if (typeof payload.sub !== "string" || payload.sub.length === 0 || payload.sub.length > 255) return undefined;
  if (typeof payload.exp !== "number") return undefined;
  if (payload.typ !== undefined && payload.typ !== "Bearer") return undefined;
  const claimed = Array.isArray(payload.realm_access?.roles) ? payload.realm_access.roles : [];
  const strongest = ROLES.filter((role) => claimed.includes(role)).at(-1);
  const text = (value: unknown) => (typeof value === "string" && value.length <= 200 ? value : undefined);
  return {
    subject: payload.sub,
    tenantClaim: payload[tenantClaim],
    role: strongest ?? defaultRole,
    email: text(payload.email),
    name: text(payload.name) ?? text(payload.preferred_username)
  };
}
