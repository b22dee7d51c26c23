-- DailyStatsRepository.merge
-- $1 tenantId, $2 totals
select m."changed_device_id" as "deviceId" from merge_daily_stats($1, $2::jsonb) m
