-- ReadingRepository.ingestMany
-- $1 deviceIds, $2 temperatures, $3 humidities, $4 batteryLevels, $5 instants, $6 tenantId
with "input" as (
     select * from unnest($1::uuid[], $2::float8[], $3::float8[], $4::float8[], $5::float8[]) with ordinality as v("deviceId", "t", "h", "b", "ms", "n")
   ), "device" as (
     select d."id" from "tenant_a"."devices" d where d."id" in (select distinct v."deviceId" from "input" v) and d."is_active"
   ), "rules" as (
     select r."device_id" as "deviceId", r."condition", r."threshold_celsius" as "thresholdCelsius", r."open_alert_id" as "openAlertId",
            date_part('epoch', r."evaluated_from") * 1000 as "fromMs", date_part('epoch', r."episodes_until") * 1000 as "untilMs"
       from "tenant_a"."alert_rules" r
      where r."device_id" in (select "device"."id" from "device") and r."is_enabled"
        for share of r
   ), "alert_change" as (
     select distinct r."deviceId" from "rules" r
      where r."openAlertId" is not null
         or exists (select 1 from "input" v
                     where v."deviceId" = r."deviceId"
                       and (r."fromMs" is null or v."ms" >= r."fromMs")
                       and (case r."condition" when 'above' then v."t" > r."thresholdCelsius" else v."t" < r."thresholdCelsius" end
                            or v."ms" < r."untilMs"))
   ), "stored" as (
     insert into "tenant_a"."temperature_readings" ("device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at")
     select v."deviceId", v."t", v."h", v."b", timestamptz 'epoch' + v."ms" * interval '1 millisecond'
       from "input" v
      where v."deviceId" not in (select ac."deviceId" from "alert_change" ac)
        and v."deviceId" in (select "device"."id" from "device")
      order by v."n"
     on conflict ("device_id", "recorded_at") do nothing
     returning "id", "device_id", "recorded_at", "temperature_celsius"
   ), "inserted" as (
     select string_agg(st."id"::text, ',') as "ids", string_agg(st."device_id"::text, ',') as "devices",
            string_agg((date_part('epoch', st."recorded_at") * 1000)::bigint::text, ',') as "instants"
       from "stored" st
   ), "day_totals" as (
     select st."device_id"::text as "deviceId",
           ((st."recorded_at" at time zone tz."name")::date)::text as "date",
           count(*)::int as "readingCount",
           avg(st."temperature_celsius") as "avgTemperatureCelsius",
           min(st."temperature_celsius") as "minTemperatureCelsius",
           max(st."temperature_celsius") as "maxTemperatureCelsius"
      from "stored" st
     cross join (select coalesce((select t."timezone" from "public"."tenants" t where t."id" = $6), 'UTC') as "name") tz
     group by 1, 2
   )
   select (select array_agg(ac."deviceId"::text) from "alert_change" ac) as "alertChangeDevices",
          (select array_agg("device"."id"::text) from "device") as "activeDevices",
          now() as "now",
          (select "ids" from "inserted") as "ids",
          (select "devices" from "inserted") as "devices",
          (select "instants" from "inserted") as "instants",
          (select coalesce(json_agg(dt), '[]'::json) from "day_totals" dt) as "days",
          pg_current_xact_id()::text as "xid"
