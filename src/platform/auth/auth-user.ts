/** What a verified access token tells us about the caller. */
export interface AuthUser {
  subject: string;
  /** Raw tenant claim; validated by the tenant middleware before it names a schema. */
  tenantClaim: unknown;
  roles: string[];
  email?: string;
  name?: string;
}

export const ADMIN_ROLE = "admin";

export interface AccessTokenPayload {
  sub?: unknown;
  exp?: unknown;
  email?: unknown;
  name?: unknown;
  preferred_username?: unknown;
  realm_access?: {roles?: unknown};
  [claim: string]: unknown;
}

export function toAuthUser(payload: AccessTokenPayload, tenantClaim: string): AuthUser | undefined {
  if (typeof payload.sub !== "string" || payload.sub.length === 0 || payload.sub.length > 255) return undefined;
  // jsonwebtoken accepts a token without `exp`; an access token that never expires is refused.
  if (typeof payload.exp !== "number") return undefined;
  const roles = Array.isArray(payload.realm_access?.roles) ? payload.realm_access.roles.filter((r): r is string => typeof r === "string") : [];
  const text = (value: unknown) => (typeof value === "string" && value.length <= 200 ? value : undefined);
  return {
    subject: payload.sub,
    tenantClaim: payload[tenantClaim],
    roles,
    email: text(payload.email),
    name: text(payload.name) ?? text(payload.preferred_username)
  };
}
