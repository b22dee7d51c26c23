-- ReadingRepository.ingest (ReadingWriter.together, readings expected to be new)
-- $1 deviceIds, $2 deviceIndexes, $3 temperatures, $4 humidities, $5 batteryLevels, $6 instants, $7 deviceIds, $8 onlyWithoutAlertChange, $9 onlyWithoutAlertChange, $10 tenantId
with "input" as (
     select ($1::uuid[])[v."i"] as "deviceId", v."t", v."h", v."b", v."ms", v."n"
       from unnest($2::int[], $3::float8[], $4::float8[], $5::float8[], $6::float8[]) with ordinality as v("i", "t", "h", "b", "ms", "n")
   ), "device" as (
     select d."id" from "tenant_a"."devices" d where d."id" = any($7::uuid[]) and d."is_active"
   ), "rules" as (
     select r."device_id" as "deviceId", r."id" as "ruleId", r."kind", r."condition",
            r."threshold_celsius" as "thresholdCelsius", r."for_seconds" as "forSeconds", r."clear_delta_celsius" as "clearDeltaCelsius",
            r."evaluated_from" as "evaluatedFrom", r."open_alert_id" as "openAlertId",
            date_part('epoch', r."evaluated_from") * 1000 as "fromMs",
            case when r."kind" = 'threshold' then date_part('epoch', r."episodes_until") * 1000 end as "untilMs"
       from "tenant_a"."alert_rules" r
      where r."device_id" in (select dv."id" from "device" dv) and r."is_enabled"
        for share of r
   ), "alert_change" as (
     select distinct r."deviceId" from "rules" r
      where r."openAlertId" is not null
         or exists (select 1 from "input" v
                     where v."deviceId" = r."deviceId"
                       and (r."fromMs" is null or v."ms" >= r."fromMs")
                       and (coalesce(case r."condition" when 'above' then v."t" > r."thresholdCelsius" when 'below' then v."t" < r."thresholdCelsius" end, false) or v."ms" < r."untilMs"))
   ), "arrival" as (
     update "tenant_a"."devices" d set "last_arrival_at" = now()
       from (select dv."id" from "tenant_a"."devices" dv
              where dv."id" in (select r."deviceId" from "rules" r where r."kind" = 'no_data')
                and dv."id" in (select a."deviceId" from (select v."deviceId" from "input" v
          where not ($8::boolean and v."deviceId" in (select ac."deviceId" from "alert_change" ac))) a)
              order by dv."id" for no key update) locked
      where d."id" = locked."id"
   ), "stored" as (
     insert into "tenant_a"."temperature_readings" ("device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at")
     select v."deviceId", v."t", v."h", v."b", timestamptz 'epoch' + v."ms" * interval '1 millisecond'
       from "input" v
      where v."deviceId" in (select "device"."id" from "device")
        and not ($9::boolean and v."deviceId" in (select ac."deviceId" from "alert_change" ac))
      order by v."n"
     returning "id", "device_id", "recorded_at", "temperature_celsius"
   ), "inserted" as (
     select st."device_id"::text as "deviceId", string_agg(st."id"::text, ',') as "ids",
            string_agg((date_part('epoch', st."recorded_at") * 1000)::bigint::text, ',') as "instants"
       from "stored" st
      group by st."device_id"
   ), "day_totals" as (
     select st."device_id"::text as "deviceId",
           ((st."recorded_at" at time zone tz."name")::date)::text as "date",
           count(*)::int as "readingCount",
           avg(st."temperature_celsius") as "avgTemperatureCelsius",
           min(st."temperature_celsius") as "minTemperatureCelsius",
           max(st."temperature_celsius") as "maxTemperatureCelsius"
      from "stored" st
     cross join (select coalesce((select t."timezone" from "public"."tenants" t where t."id" = $10), 'UTC') as "name") tz
     group by 1, 2
   )
   select (select array_agg(ac."deviceId"::text) from "alert_change" ac) as "alertChangeDevices",
          (select array_agg("device"."id"::text) from "device") as "activeDevices",
          now() as "now",
          (select json_agg(json_build_array(i."deviceId", i."ids", i."instants")) from "inserted" i) as "inserted",
          (select coalesce(json_agg(dt), '[]'::json) from "day_totals" dt) as "days",
          pg_current_xact_id()::text as "xid",
          (select json_agg(json_build_array(r."deviceId", r."condition", r."thresholdCelsius")) from "rules" r where r."condition" is not null) as "thresholds",
          null::json as "episodeStates"
