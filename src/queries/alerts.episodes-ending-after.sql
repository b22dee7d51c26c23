-- AlertRepository.episodesEndingAfter
-- $1 ruleIds, $2 after
select a."id", a."rule_id" as "ruleId", a."reading_id"::text as "readingId", a."temperature_celsius" as "temperatureCelsius",
       a."fired_at" as "firedAt", a."last_reading_at" as "lastReadingAt", a."peak_temperature_celsius" as "peakTemperatureCelsius",
       a."reading_count" as "readingCount", a."resolved_at" as "resolvedAt", a."acknowledged_at" as "acknowledgedAt", a."acknowledged_by_id" as "acknowledgedById"
  from "tenant_a"."alerts" a
 where a."rule_id" = any($1::uuid[]) and (a."resolved_at" is null or a."resolved_at" > $2)
