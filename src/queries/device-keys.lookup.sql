-- DeviceKeyVerifier.load
-- $1 keyId
select k."tenant_id" as "tenantId", k."device_id"::text as "deviceId", k."secret_sha256" as "digest", k."revoked_at" is not null as "revoked"
  from "public"."device_keys" k
 where k."id" = $1::uuid
