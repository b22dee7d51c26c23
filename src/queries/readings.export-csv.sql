-- ReadingExportRepository.open
-- 
copy (select r."device_id" as "deviceId", d."serial_number" as "serialNumber", to_char(r."recorded_at" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "recordedAt",
       r."temperature_celsius" as "temperatureCelsius", r."humidity" as "humidity", r."battery_level" as "batteryLevel"
  from "tenant_a"."temperature_readings" r
  join "tenant_a"."devices" d on d."id" = r."device_id"
  where r."recorded_at" >= '2026-03-01T00:00:00.000Z'::timestamptz and r."recorded_at" < '2026-04-01T00:00:00.000Z'::timestamptz
  order by r."recorded_at", r."device_id") to stdout with (format csv, header true)
