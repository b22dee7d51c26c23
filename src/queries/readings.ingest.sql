-- ReadingRepository.ingest
-- $1 deviceId, $2 temperatures, $3 humidities, $4 batteryLevels, $5 instants, $6 deviceId, $7 onlyWithoutAlertChange, $8 tenantId, $9 deviceId
with "device" as (
     select d."id" from "tenant_a"."devices" d where d."id" = $1::uuid and d."is_active"
   ), "input" as (
     select * from unnest($2::float8[], $3::float8[], $4::float8[], $5::float8[]) as v("t", "h", "b", "ms")
   ), "rules" as (
     select r."id" as "ruleId", r."condition", r."threshold_celsius" as "thresholdCelsius", r."evaluated_from" as "evaluatedFrom",
            r."open_alert_id" as "openAlertId", date_part('epoch', r."evaluated_from") * 1000 as "fromMs", date_part('epoch', r."episodes_until") * 1000 as "untilMs"
       from "tenant_a"."alert_rules" r
      where r."device_id" = $6::uuid and r."is_enabled"
        for share of r
   ), "alert_change" as (
     select exists (
       select 1 from "rules" r
        where r."openAlertId" is not null
           or exists (select 1 from "input" v
                       where (r."fromMs" is null or v."ms" >= r."fromMs")
                         and (case r."condition" when 'above' then v."t" > r."thresholdCelsius" else v."t" < r."thresholdCelsius" end
                              or v."ms" < r."untilMs"))
     ) as "possible"
   ), "stored" as (
     insert into "tenant_a"."temperature_readings" ("device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at")
     select "device"."id", v."t", v."h", v."b", timestamptz 'epoch' + v."ms" * interval '1 millisecond'
       from "device", "input" v
      where not ($7::boolean and (select "possible" from "alert_change"))
     on conflict ("device_id", "recorded_at") do nothing
     returning "id", "recorded_at", "temperature_celsius"
   ), "inserted" as (
     select string_agg(st."id"::text, ',') as "ids", string_agg((date_part('epoch', st."recorded_at") * 1000)::bigint::text, ',') as "instants" from "stored" st
   ), "day_totals" as (
     select ((st."recorded_at" at time zone tz."name")::date)::text as "date",
           count(*)::int as "readingCount",
           avg(st."temperature_celsius") as "avgTemperatureCelsius",
           min(st."temperature_celsius") as "minTemperatureCelsius",
           max(st."temperature_celsius") as "maxTemperatureCelsius"
      from "stored" st
     cross join (select coalesce((select t."timezone" from "public"."tenants" t where t."id" = $8), 'UTC') as "name") tz
     group by 1
   )
   select exists (select 1 from "device") as "deviceActive",
          now() as "now",
          (select max(tr."recorded_at") from "tenant_a"."temperature_readings" tr where tr."device_id" = $9::uuid) as "watermark",
          (select coalesce(json_agg(json_build_object(
             'ruleId', r."ruleId", 'condition', r."condition", 'thresholdCelsius', r."thresholdCelsius", 'evaluatedFrom', r."evaluatedFrom",
             'open', (select json_build_object(
                        'id', a."id", 'readingId', a."reading_id"::text, 'temperatureCelsius', a."temperature_celsius", 'firedAt', a."fired_at",
                        'lastReadingAt', a."last_reading_at", 'peakTemperatureCelsius', a."peak_temperature_celsius", 'readingCount', a."reading_count",
                        'acknowledgedAt', a."acknowledged_at", 'acknowledgedById', a."acknowledged_by_id")
                      from "tenant_a"."alerts" a where a."id" = r."openAlertId")
           ) order by r."ruleId"), '[]'::json) from "rules" r) as "rules",
          (select "possible" from "alert_change") as "alertChangePossible",
          (select "ids" from "inserted") as "ids",
          (select "instants" from "inserted") as "instants",
          (select coalesce(json_agg(dt), '[]'::json) from "day_totals" dt) as "days",
          pg_current_xact_id()::text as "xid"
