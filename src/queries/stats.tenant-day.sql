-- DayTotalsRepository.forDay
-- $1 day, $2 day, $3 timezone, $4 day, $5 timezone
select r."device_id" as "deviceId", $1::date::text as "date",
    count(*)::int as "readingCount",
    avg(r."temperature_celsius") as "avgTemperatureCelsius",
    min(r."temperature_celsius") as "minTemperatureCelsius",
    max(r."temperature_celsius") as "maxTemperatureCelsius"
  from "tenant_a"."temperature_readings" r
  where r."recorded_at" >= ($2::date::timestamp at time zone $3)
    and r."recorded_at" < (($4::date + 1)::timestamp at time zone $5)
  group by r."device_id"
  order by r."device_id"
