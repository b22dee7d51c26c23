-- AlertRepository.endEpisodes
-- $1 at, $2 at, $3 ruleId, $4 restart, $5 at, $6 ruleId
with "resolved" as (
     update "tenant_a"."alerts" a set "resolved_at" = $1, "updated_at" = $2, "version" = a."version" + 1
      where a."rule_id" = $3 and a."resolved_at" is null and a."retracted_at" is null
      returning a."id", a."created_at" as "createdAt", a."updated_at" as "updatedAt", a."rule_id" as "ruleId", a."device_id" as "deviceId",
  a."reading_id"::text as "readingId", a."severity", a."temperature_celsius" as "temperatureCelsius", a."breach_started_at" as "breachStartedAt",
  a."fired_at" as "firedAt", a."silent_since" as "silentSince",
  a."last_reading_at" as "lastReadingAt", a."peak_temperature_celsius" as "peakTemperatureCelsius", a."reading_count" as "readingCount",
  a."resolved_at" as "resolvedAt", a."retracted_at" as "retractedAt", a."acknowledged_at" as "acknowledgedAt",
  a."acknowledged_by_id" as "acknowledgedById", a."acknowledgement_comment" as "acknowledgementComment", a."version"
   ), "rule" as (
     update "tenant_a"."alert_rules" r set
       "open_alert_id" = null,
       "episodes_until" = greatest(r."episodes_until", (select max("resolvedAt") from "resolved")),
       "evaluated_from" = case when $4::boolean then $5 else r."evaluated_from" end
     where r."id" = $6
     returning r."evaluated_from" as "evaluatedFrom"
   )
   select (select "evaluatedFrom" from "rule") as "evaluatedFrom", (select coalesce(json_agg(rs), '[]'::json) from "resolved" rs) as "resolved"
