-- AlertBacktestRepository.arrivals
-- $1 deviceId, $2 recordedFrom, $3 recordedTo, $4 arrivedFrom, $5 arrivedTo
select r."created_at" as "arrivedAt"
  from "tenant_a"."temperature_readings" r
 where r."device_id" = $1::uuid and r."recorded_at" >= $2 and r."recorded_at" < $3
   and r."created_at" >= $4 and r."created_at" < $5
 order by r."created_at"
