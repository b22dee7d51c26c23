-- DayTotalsRepository.hourly
-- $1 timezone, $2 deviceId, $3 timezone, $4 hours, $5 timezone
select date_trunc('hour', r."recorded_at", $1) as "start",
    count(*)::int as "readingCount",
    avg(r."temperature_celsius") as "avgTemperatureCelsius",
    min(r."temperature_celsius") as "minTemperatureCelsius",
    max(r."temperature_celsius") as "maxTemperatureCelsius"
  from "tenant_a"."temperature_readings" r
  where r."device_id" = $2
    and r."recorded_at" >= date_trunc('hour', now(), $3) - ($4 - 1) * interval '1 hour'
    and r."recorded_at" < date_trunc('hour', now(), $5) + interval '1 hour'
  group by 1
  order by 1
