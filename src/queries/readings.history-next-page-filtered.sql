-- ReadingHistoryRepository.page
-- $1 deviceId, $2 before, $3 from, $4 to, $5 minTemp, $6 limit
select r."id", r."device_id" as "deviceId", r."temperature_celsius" as "temperatureCelsius", r."humidity",
      r."battery_level" as "batteryLevel", r."recorded_at" as "recordedAt", r."created_at" as "createdAt",
      to_char(r."recorded_at" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "cursorAt"
    from "tenant_a"."temperature_readings" r
    where r."device_id" = $1 and r."recorded_at" < $2::timestamptz and r."recorded_at" >= $3::timestamptz and r."recorded_at" < $4::timestamptz and r."temperature_celsius" >= $5
    order by r."recorded_at" desc
    limit $6
