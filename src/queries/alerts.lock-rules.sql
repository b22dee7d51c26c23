-- AlertRepository.lockRules
-- $1 deviceId
select r."id", json_build_object(
         'id', r."id", 'kind', r."kind", 'condition', r."condition", 'thresholdCelsius', r."threshold_celsius",
         'forSeconds', r."for_seconds", 'clearDeltaCelsius', r."clear_delta_celsius", 'severity', r."severity",
         'silenceSeconds', r."silence_seconds", 'remindEverySeconds', r."remind_every_seconds", 'isEnabled', r."is_enabled") as "rule",
       json_build_object('id', d."id", 'serialNumber', d."serial_number", 'name', d."name", 'location', d."location") as "device"
  from "tenant_a"."alert_rules" r join "tenant_a"."devices" d on d."id" = r."device_id"
 where r."device_id" = $1 and r."is_enabled"
 order by r."id" for update of r for share of d
