-- DeviceKeyVerifier.poll
-- $1 since
select now() as "now",
       coalesce((select array_agg(k."id"::text) from "public"."device_keys" k where k."revoked_at" >= $1::timestamptz - interval '30 seconds'), '{}') as "revoked"
