/**
 * A tenant id names a Postgres schema, so it is checked before it is used anywhere: lower-case
 * identifier syntax (no quoting tricks possible), at most 63 bytes (Postgres' identifier limit),
 * and never a schema Postgres or the platform owns.
 */
export const TENANT_ID_PATTERN = /^[a-z][a-z0-9_]{0,62}$/;

const RESERVED = new Set(["public", "information_schema", "mikro_orm", "postgres", "template0", "template1"]);

export function isValidTenantId(value: unknown): value is string {
  return typeof value === "string" && TENANT_ID_PATTERN.test(value) && !RESERVED.has(value) && !value.startsWith("pg_");
}

export class InvalidTenantIdError extends Error {
  constructor() {
    super("The token's tenant claim is missing or is not a valid tenant id");
    this.name = "InvalidTenantIdError";
  }
}

export function assertTenantId(value: unknown): string {
  if (!isValidTenantId(value)) throw new InvalidTenantIdError();
  return value;
}

/** The tenant's schema as a quoted SQL identifier; validates again so no caller can skip it. */
export function quoteTenantSchema(value: unknown): string {
  return `"${assertTenantId(value)}"`;
}
