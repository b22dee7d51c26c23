-- ReadingHistoryRepository.latest
-- $1 deviceId, $2 from, $3 to, $4 limit, $5 deviceId
select h.* from "tenant_a"."devices" d
    left join lateral (select r."id", r."device_id" as "deviceId", r."temperature_celsius" as "temperatureCelsius", r."humidity",
      r."battery_level" as "batteryLevel", r."recorded_at" as "recordedAt", r."created_at" as "createdAt",
      to_char(r."recorded_at" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "cursorAt"
    from "tenant_a"."temperature_readings" r
    where r."device_id" = $1 and r."recorded_at" >= $2::timestamptz and r."recorded_at" < $3::timestamptz
    order by r."recorded_at" desc
    limit $4) h on true
    where d."id" = $5
