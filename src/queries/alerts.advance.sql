-- AlertRepository.advance
-- $1 ids, $2 added, $3 peaks, $4 lastReadingAts, $5 resolvedAts, $6 conditions, $7 wereResolved
update "tenant_a"."alerts" as a set
    "reading_count" = a."reading_count" + v."added",
    "peak_temperature_celsius" = case when v."condition" = 'above' then greatest(a."peak_temperature_celsius", v."peak")
                                      else least(a."peak_temperature_celsius", v."peak") end,
    "last_reading_at" = greatest(a."last_reading_at", v."last_reading_at"),
    "resolved_at" = coalesce(a."resolved_at", v."resolved_at"),
    "updated_at" = now()
   from unnest($1::uuid[], $2::int[], $3::float8[], $4::timestamptz[], $5::timestamptz[], $6::text[], $7::boolean[])
        as v("id", "added", "peak", "last_reading_at", "resolved_at", "condition", "was_resolved")
  where a."id" = v."id"
    and case when v."was_resolved" then a."resolved_at" is not null
             else a."resolved_at" is null and (v."resolved_at" is null or a."last_reading_at" < v."resolved_at") end
  returning a."id", a."created_at" as "createdAt", a."updated_at" as "updatedAt", a."rule_id" as "ruleId", a."device_id" as "deviceId",
  a."reading_id"::text as "readingId", a."temperature_celsius" as "temperatureCelsius", a."fired_at" as "firedAt",
  a."last_reading_at" as "lastReadingAt", a."peak_temperature_celsius" as "peakTemperatureCelsius", a."reading_count" as "readingCount",
  a."resolved_at" as "resolvedAt", a."acknowledged_at" as "acknowledgedAt", a."acknowledged_by_id" as "acknowledgedById"
