import {Inject, Injectable} from "@tsed/common";
import {queryRows} from "../../platform/db/sql.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import type {DeviceKey} from "./device-key.models.js";

/**
 * Key management statements on `public.device_keys` (platform metadata, see
 * Migration20261203100000_device_keys), always scoped to the request's tenant. They run on the
 * request's entity manager, so inside the caller's transaction when it has one. The lookup by key
 * id, for verification, is DeviceKeyVerifier's.
 */
@Injectable()
export class DeviceKeyRepository {
  @Inject()
  private tenant!: TenantContext;

  /**
   * Locks the device's row (FOR UPDATE) if it is an active device of the tenant: key creation and
   * deactivation (which updates the row) then run one after the other, so no key is created for
   * a device that is being deactivated, and two creations cannot both see one active key.
   */
  async lockActiveDevice(deviceId: string): Promise<boolean> {
    const rows = await queryRows(
      this.tenant.em,
      `select d."id" from ${quoteTenantSchema(this.tenant.tenantId)}."devices" d where d."id" = :deviceId::uuid and d."is_active" for update`,
      {deviceId}
    );
    return rows.length > 0;
  }

  async countActive(deviceId: string): Promise<number> {
    const [row] = await queryRows<{n: number}>(
      this.tenant.em,
      `select count(*)::int as "n" from "public"."device_keys" where "tenant_id" = :tenantId and "device_id" = :deviceId::uuid and "revoked_at" is null`,
      {tenantId: this.tenant.tenantId, deviceId}
    );
    return row!.n;
  }

  async insert(keyId: string, deviceId: string, digest: Buffer): Promise<Date> {
    const [row] = await queryRows<{createdAt: Date}>(
      this.tenant.em,
      `insert into "public"."device_keys" ("id", "tenant_id", "device_id", "secret_sha256") values (:keyId::uuid, :tenantId, :deviceId::uuid, :digest) returning "created_at" as "createdAt"`,
      {keyId, tenantId: this.tenant.tenantId, deviceId, digest}
    );
    return row!.createdAt;
  }

  listActive(deviceId: string): Promise<DeviceKey[]> {
    return queryRows<DeviceKey>(
      this.tenant.em,
      `select "id"::text as "id", "created_at" as "createdAt", "last_used_at" as "lastUsedAt" from "public"."device_keys"
        where "tenant_id" = :tenantId and "device_id" = :deviceId::uuid and "revoked_at" is null order by "created_at", "id"`,
      {tenantId: this.tenant.tenantId, deviceId}
    );
  }

  /** Revokes one key of the device; false when the device has no such key (revoked ones count: revoking is idempotent). */
  async revoke(deviceId: string, keyId: string): Promise<boolean> {
    const rows = await queryRows(
      this.tenant.em,
      `with "key" as (select "id" from "public"."device_keys" where "id" = :keyId::uuid and "tenant_id" = :tenantId and "device_id" = :deviceId::uuid),
            "revoked" as (update "public"."device_keys" k set "revoked_at" = now() from "key" where k."id" = "key"."id" and k."revoked_at" is null)
       select 1 from "key"`,
      {keyId, tenantId: this.tenant.tenantId, deviceId}
    );
    return rows.length > 0;
  }

  /** Revokes every active key of the device (it is being deactivated); returns their ids. */
  async revokeAll(deviceId: string): Promise<string[]> {
    const rows = await queryRows<{id: string}>(
      this.tenant.em,
      `update "public"."device_keys" set "revoked_at" = now() where "tenant_id" = :tenantId and "device_id" = :deviceId::uuid and "revoked_at" is null returning "id"::text as "id"`,
      {tenantId: this.tenant.tenantId, deviceId}
    );
    return rows.map((row) => row.id);
  }
}
