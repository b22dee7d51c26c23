-- DailyStatsRepository.replace
-- $1 tenantId, $2 snapshot, $3 rows
insert into "daily_stats" as ds
    ("tenant_id", "device_id", "date", "avg_temperature_celsius", "min_temperature_celsius", "max_temperature_celsius", "reading_count", "updated_at", "recomputed_snapshot")
  select $1, x."deviceId", x."date", x."avgTemperatureCelsius", x."minTemperatureCelsius", x."maxTemperatureCelsius", x."readingCount", now(), $2::pg_snapshot
    from jsonb_to_recordset($3::jsonb) as x("deviceId" uuid, "date" date, "avgTemperatureCelsius" float8, "minTemperatureCelsius" float8, "maxTemperatureCelsius" float8, "readingCount" int)
   order by x."deviceId"
  on conflict ("tenant_id", "device_id", "date") do update set
    "reading_count" = excluded."reading_count",
    "avg_temperature_celsius" = excluded."avg_temperature_celsius",
    "min_temperature_celsius" = excluded."min_temperature_celsius",
    "max_temperature_celsius" = excluded."max_temperature_celsius",
    "updated_at" = excluded."updated_at",
    "recomputed_snapshot" = excluded."recomputed_snapshot"
  where ds."reading_count" <> excluded."reading_count"
    or ds."min_temperature_celsius" <> excluded."min_temperature_celsius"
    or ds."max_temperature_celsius" <> excluded."max_temperature_celsius"
    or abs(ds."avg_temperature_celsius" - excluded."avg_temperature_celsius") > 1e-9 * greatest(1, abs(excluded."avg_temperature_celsius"))
  returning ds."device_id" as "deviceId"
