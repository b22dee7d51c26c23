import {Migration} from "@mikro-orm/migrations";

/**
 * Device keys (docs/api.md "Devices as clients") are platform metadata in `public`, beside the tenant
 * registry: a device presents only its key, so the key must lead to its tenant and device before
 * any tenant schema is known. The secret itself is never stored, only its SHA-256.
 * - `device_keys_active_by_device`: "at most two active keys per device" and the key list.
 * - `device_keys_revoked_at`: the revocation feed every instance polls (DeviceKeyVerifier), so a
 *   revoked key stops working within seconds everywhere without a lookup per message; partial, so
 *   it holds revoked keys only.
 */
export class Migration20261203100000_device_keys extends Migration {
  override up(): void {
    this.addSql(`create table if not exists "public"."device_keys" (
      "id" uuid not null primary key,
      "tenant_id" varchar(63) not null,
      "device_id" uuid not null,
      "secret_sha256" bytea not null,
      "created_at" timestamptz not null default now(),
      "last_used_at" timestamptz null,
      "revoked_at" timestamptz null
    );`);
    this.addSql(
      `create index if not exists "device_keys_active_by_device" on "public"."device_keys" ("tenant_id", "device_id") where "revoked_at" is null;`
    );
    this.addSql(
      `create index if not exists "device_keys_revoked_at" on "public"."device_keys" ("revoked_at") where "revoked_at" is not null;`
    );
  }

  override down(): void {
    this.addSql(`drop table if exists "public"."device_keys";`);
  }
}
