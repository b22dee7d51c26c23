-- AlertRepository.lockRules
-- $1 deviceId
select r."id" from "tenant_a"."alert_rules" r where r."device_id" = $1 and r."is_enabled" order by r."id" for update
