-- AlertRepository.write (its last write)
-- $1 ids, $2 readingIds, $3 temperatures, $4 breachStartedAts, $5 firedAts, $6 lastReadingAts, $7 peaks, $8 counts, $9 resolvedAts, $10 touchedRuleIds, $11 touchedRuleIds
with "written" as (
     update "tenant_a"."alerts" as a set
    "reading_id" = v."reading_id", "temperature_celsius" = v."temperature", "breach_started_at" = v."breach_started_at", "fired_at" = v."fired_at",
    "last_reading_at" = v."last_reading_at", "peak_temperature_celsius" = v."peak", "reading_count" = v."count", "resolved_at" = v."resolved_at",
    "updated_at" = now(), "version" = a."version" + 1
   from unnest($1::uuid[], $2::bigint[], $3::float8[], $4::timestamptz[], $5::timestamptz[],
               $6::timestamptz[], $7::float8[], $8::int[], $9::timestamptz[])
        as v("id", "reading_id", "temperature", "breach_started_at", "fired_at", "last_reading_at", "peak", "count", "resolved_at")
  where a."id" = v."id"
  returning a."id", a."created_at" as "createdAt", a."updated_at" as "updatedAt", a."rule_id" as "ruleId", a."device_id" as "deviceId",
  a."reading_id"::text as "readingId", a."severity", a."temperature_celsius" as "temperatureCelsius", a."breach_started_at" as "breachStartedAt",
  a."fired_at" as "firedAt", a."silent_since" as "silentSince",
  a."last_reading_at" as "lastReadingAt", a."peak_temperature_celsius" as "peakTemperatureCelsius", a."reading_count" as "readingCount",
  a."resolved_at" as "resolvedAt", a."retracted_at" as "retractedAt", a."acknowledged_at" as "acknowledgedAt",
  a."acknowledged_by_id" as "acknowledgedById", a."acknowledgement_comment" as "acknowledgementComment", a."version"
   ), "episodes" as (
     select w."id", w."ruleId", w."resolvedAt", w."retractedAt" from "written" w
     union all
     select a."id", a."rule_id", a."resolved_at", a."retracted_at" from "tenant_a"."alerts" a
      where a."rule_id" = any($10::uuid[]) and a."id" not in (select w."id" from "written" w)
   ), "refreshed" as (
     update "tenant_a"."alert_rules" r set
       "open_alert_id" = (select e."id" from "episodes" e where e."ruleId" = r."id" and e."resolvedAt" is null and e."retractedAt" is null),
       "episodes_until" = (select max(e."resolvedAt") from "episodes" e where e."ruleId" = r."id" and e."retractedAt" is null)
     where r."id" = any($11::uuid[])
   )
   select * from "written"
