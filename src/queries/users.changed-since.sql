-- CallerUsers' ChangeFeed.poll
-- $1 since
select now() as "now",
       coalesce(array_agg(c."tenant_id" || ':' || c."subject" order by c."tenant_id", c."subject"), '{}') as "changed",
       coalesce(array_agg(c."changed_at"::text order by c."tenant_id", c."subject"), '{}') as "stamps"
  from "public"."user_changes" c
 where c."changed_at" >= $1::timestamptz - interval '30 seconds'
