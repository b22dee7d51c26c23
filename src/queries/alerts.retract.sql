-- AlertRepository.write
-- $1 ids
update "tenant_a"."alerts" as a set "retracted_at" = now(), "updated_at" = now(), "version" = a."version" + 1
  where a."id" = any($1::uuid[]) and a."retracted_at" is null
  returning a."id", a."created_at" as "createdAt", a."updated_at" as "updatedAt", a."rule_id" as "ruleId", a."device_id" as "deviceId",
  a."reading_id"::text as "readingId", a."severity", a."temperature_celsius" as "temperatureCelsius", a."breach_started_at" as "breachStartedAt",
  a."fired_at" as "firedAt", a."silent_since" as "silentSince",
  a."last_reading_at" as "lastReadingAt", a."peak_temperature_celsius" as "peakTemperatureCelsius", a."reading_count" as "readingCount",
  a."resolved_at" as "resolvedAt", a."retracted_at" as "retractedAt", a."acknowledged_at" as "acknowledgedAt",
  a."acknowledged_by_id" as "acknowledgedById", a."acknowledgement_comment" as "acknowledgementComment", a."version"
