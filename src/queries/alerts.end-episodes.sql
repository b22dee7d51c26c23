-- AlertRepository.endEpisodes
-- $1 at, $2 at, $3 ruleId, $4 restart, $5 at, $6 ruleId
with "resolved" as (
     update "tenant_a"."alerts" set "resolved_at" = $1, "updated_at" = $2 where "rule_id" = $3 and "resolved_at" is null returning "resolved_at"
   )
   update "tenant_a"."alert_rules" r set
     "open_alert_id" = null,
     "episodes_until" = greatest(r."episodes_until", (select max("resolved_at") from "resolved")),
     "evaluated_from" = case when $4::boolean then $5 else r."evaluated_from" end
   where r."id" = $6
   returning r."evaluated_from" as "evaluatedFrom"
