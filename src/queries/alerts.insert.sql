-- AlertRepository.write
-- $1 deviceId, $2 ruleIds, $3 readingIds, $4 temperatures, $5 firedAts, $6 lastReadingAts, $7 peaks, $8 counts, $9 resolvedAts, $10 acknowledgedAts, $11 acknowledgedByIds
insert into "tenant_a"."alerts" as a ("id", "created_at", "updated_at", "rule_id", "device_id", "reading_id", "temperature_celsius",
                                    "fired_at", "last_reading_at", "peak_temperature_celsius", "reading_count", "resolved_at", "acknowledged_at", "acknowledged_by_id")
  select gen_random_uuid(), now(), now(), v."rule_id", $1::uuid, v."reading_id", v."temperature", v."fired_at", v."last_reading_at", v."peak", v."count", v."resolved_at",
         v."acknowledged_at", v."acknowledged_by_id"
    from unnest($2::uuid[], $3::bigint[], $4::float8[], $5::timestamptz[], $6::timestamptz[], $7::float8[], $8::int[],
                $9::timestamptz[], $10::timestamptz[], $11::uuid[])
         as v("rule_id", "reading_id", "temperature", "fired_at", "last_reading_at", "peak", "count", "resolved_at", "acknowledged_at", "acknowledged_by_id")
  returning a."id", a."created_at" as "createdAt", a."updated_at" as "updatedAt", a."rule_id" as "ruleId", a."device_id" as "deviceId",
  a."reading_id"::text as "readingId", a."temperature_celsius" as "temperatureCelsius", a."fired_at" as "firedAt",
  a."last_reading_at" as "lastReadingAt", a."peak_temperature_celsius" as "peakTemperatureCelsius", a."reading_count" as "readingCount",
  a."resolved_at" as "resolvedAt", a."acknowledged_at" as "acknowledgedAt", a."acknowledged_by_id" as "acknowledgedById"
