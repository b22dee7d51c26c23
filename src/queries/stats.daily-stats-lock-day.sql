-- DailyStatsRepository.withDayLocked
-- $1 tenantId, $2 day
select pg_advisory_xact_lock(hashtextextended('daily_stats:' || $1 || ':' || $2, 0))
