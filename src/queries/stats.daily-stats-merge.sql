-- DailyStatsRepository.merge
-- $1 groups
select g."tenantId", m."changed_device_id" as "deviceId"
  from jsonb_to_recordset($1::jsonb) as g("tenantId" text, "totals" jsonb)
  cross join lateral merge_daily_stats(g."tenantId", g."totals") m
