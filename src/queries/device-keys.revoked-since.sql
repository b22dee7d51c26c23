-- DeviceKeyVerifier's ChangeFeed.poll
-- $1 since
select now() as "now",
       coalesce(array_agg(k."id"::text order by k."id"), '{}') as "changed",
       coalesce(array_agg(k."revoked_at"::text order by k."id"), '{}') as "stamps"
  from "public"."device_keys" k
 where k."revoked_at" >= $1::timestamptz - interval '30 seconds'
