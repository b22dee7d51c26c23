-- AlertRepository.findResolvedEpisodes
-- $1 deviceId, $2 ruleIds, $3 to, $4 from
select a."id", a."rule_id" as "ruleId", a."fired_at" as "firedAt", a."last_reading_at" as "lastReadingAt", a."resolved_at" as "resolvedAt"
   from "tenant_a"."alerts" a
  where a."device_id" = $1 and a."rule_id" = any($2::uuid[]) and a."resolved_at" is not null and a."fired_at" <= $3 and a."resolved_at" > $4
  order by a."fired_at"
