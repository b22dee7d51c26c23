-- ReadingExportRepository.open
-- 
copy (select '{"deviceId":"' || r."device_id" || '","serialNumber":' || to_json(d."serial_number")::text || ',"recordedAt":"' || to_char(r."recorded_at" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') ||
       '","temperatureCelsius":' || r."temperature_celsius" || ',"humidity":' || coalesce(r."humidity"::text, 'null') ||
       ',"batteryLevel":' || coalesce(r."battery_level"::text, 'null') || '}'
  from "tenant_a"."temperature_readings" r
  join "tenant_a"."devices" d on d."id" = r."device_id"
  where r."recorded_at" >= '2026-03-01T00:00:00.000Z'::timestamptz and r."recorded_at" < '2026-04-01T00:00:00.000Z'::timestamptz and r."device_id" = '00000000-0000-4000-8000-000000000000'::uuid
  order by r."recorded_at") to stdout with (format csv, quote e'\x01', delimiter e'\x02')
