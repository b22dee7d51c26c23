-- DailyStatsRepository.merge
-- $1 tenantId, $2 rows
insert into "daily_stats" as ds
    ("tenant_id", "device_id", "date", "avg_temperature_celsius", "min_temperature_celsius", "max_temperature_celsius", "reading_count", "updated_at")
  select $1, x."deviceId", x."date", x."avgTemperatureCelsius", x."minTemperatureCelsius", x."maxTemperatureCelsius", x."readingCount", now()
    from jsonb_to_recordset($2::jsonb) as x("deviceId" uuid, "date" date, "avgTemperatureCelsius" float8, "minTemperatureCelsius" float8, "maxTemperatureCelsius" float8, "readingCount" int)
  on conflict ("tenant_id", "device_id", "date") do update set "reading_count" = ds."reading_count" + excluded."reading_count",
    "avg_temperature_celsius" = (ds."avg_temperature_celsius" * ds."reading_count" + excluded."avg_temperature_celsius" * excluded."reading_count")
      / (ds."reading_count" + excluded."reading_count"),
    "min_temperature_celsius" = least(ds."min_temperature_celsius", excluded."min_temperature_celsius"),
    "max_temperature_celsius" = greatest(ds."max_temperature_celsius", excluded."max_temperature_celsius"),
    "updated_at" = excluded."updated_at"
  
  returning ds."device_id" as "deviceId"
