-- AlertBacktestRepository.readings
-- $1 deviceId, $2 from, $3 to
select r."id"::text as "id", r."temperature_celsius" as "temperatureCelsius", r."recorded_at" as "recordedAt"
  from "tenant_a"."temperature_readings" r
 where r."device_id" = $1::uuid and r."recorded_at" >= $2 and r."recorded_at" < $3
 order by r."recorded_at"
