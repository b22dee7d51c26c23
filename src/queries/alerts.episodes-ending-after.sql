-- AlertRepository.episodesEndingAfter
-- $1 ruleIds, $2 after
select a."id", a."rule_id" as "ruleId", a."reading_id"::text as "readingId", a."temperature_celsius" as "temperatureCelsius",
       a."breach_started_at" as "breachStartedAt", a."fired_at" as "firedAt", a."last_reading_at" as "lastReadingAt",
       a."peak_temperature_celsius" as "peakTemperatureCelsius", a."reading_count" as "readingCount", a."resolved_at" as "resolvedAt",
       a."acknowledged_at" as "acknowledgedAt", a."acknowledged_by_id" as "acknowledgedById", a."acknowledgement_comment" as "acknowledgementComment"
  from "tenant_a"."alerts" a
 where a."rule_id" = any($1::uuid[]) and a."retracted_at" is null and (a."resolved_at" is null or a."resolved_at" > $2)
