-- AlertRepository.write
-- $1 deviceId, $2 ruleIds, $3 readingIds, $4 temperatures, $5 breachStartedAts, $6 firedAts, $7 lastReadingAts, $8 peaks, $9 counts, $10 resolvedAts, $11 acknowledgedAts, $12 acknowledgedByIds, $13 acknowledgementComments
insert into "tenant_a"."alerts" as a ("id", "created_at", "updated_at", "rule_id", "device_id", "reading_id", "severity", "temperature_celsius",
                                    "breach_started_at", "fired_at", "last_reading_at", "peak_temperature_celsius", "reading_count", "resolved_at",
                                    "acknowledged_at", "acknowledged_by_id", "acknowledgement_comment")
  select gen_random_uuid(), now(), now(), v."rule_id", $1::uuid, v."reading_id", r."severity", v."temperature", v."breach_started_at", v."fired_at",
         v."last_reading_at", v."peak", v."count", v."resolved_at", v."acknowledged_at", v."acknowledged_by_id", v."acknowledgement_comment"
    from unnest($2::uuid[], $3::bigint[], $4::float8[], $5::timestamptz[], $6::timestamptz[],
                $7::timestamptz[], $8::float8[], $9::int[], $10::timestamptz[], $11::timestamptz[],
                $12::uuid[], $13::text[])
         with ordinality as v("rule_id", "reading_id", "temperature", "breach_started_at", "fired_at", "last_reading_at", "peak", "count", "resolved_at",
                              "acknowledged_at", "acknowledged_by_id", "acknowledgement_comment", "n")
    join "tenant_a"."alert_rules" r on r."id" = v."rule_id"
   order by v."n"
  returning a."id", a."created_at" as "createdAt", a."updated_at" as "updatedAt", a."rule_id" as "ruleId", a."device_id" as "deviceId",
  a."reading_id"::text as "readingId", a."severity", a."temperature_celsius" as "temperatureCelsius", a."breach_started_at" as "breachStartedAt",
  a."fired_at" as "firedAt", a."silent_since" as "silentSince",
  a."last_reading_at" as "lastReadingAt", a."peak_temperature_celsius" as "peakTemperatureCelsius", a."reading_count" as "readingCount",
  a."resolved_at" as "resolvedAt", a."retracted_at" as "retractedAt", a."acknowledged_at" as "acknowledgedAt",
  a."acknowledged_by_id" as "acknowledgedById", a."acknowledgement_comment" as "acknowledgementComment", a."version"
