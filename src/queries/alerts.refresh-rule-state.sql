-- AlertRepository.write
-- $1 ruleIds
update "tenant_a"."alert_rules" r set
    "open_alert_id" = (select a."id" from "tenant_a"."alerts" a where a."rule_id" = r."id" and a."resolved_at" is null and a."retracted_at" is null),
    "episodes_until" = (select max(a."resolved_at") from "tenant_a"."alerts" a where a."rule_id" = r."id" and a."retracted_at" is null)
  where r."id" = any($1::uuid[])
