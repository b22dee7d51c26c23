import type {MigrationObject} from "@mikro-orm/core";
import {Migration20261122000200_daily_stats} from "./analytics/Migration20261122000200_daily_stats.js";
import {Migration20261201110000_daily_stats_exact_merge} from "./analytics/Migration20261201110000_daily_stats_exact_merge.js";
import {Migration20261122000000_tenant_registry} from "./platform/Migration20261122000000_tenant_registry.js";
import {Migration20261201120000_daily_stats_dirty_days} from "./platform/Migration20261201120000_daily_stats_dirty_days.js";
import {Migration20261202000000_tenant_raw_retention} from "./platform/Migration20261202000000_tenant_raw_retention.js";
import {Migration20261203100000_device_keys} from "./platform/Migration20261203100000_device_keys.js";
import {Migration20261206090100_tenant_raw_retention_grace} from "./platform/Migration20261206090100_tenant_raw_retention_grace.js";
import {Migration20261206200000_user_changes} from "./platform/Migration20261206200000_user_changes.js";
import {Migration20261207180000_daily_stats_dirty_days_lost_backends} from "./platform/Migration20261207180000_daily_stats_dirty_days_lost_backends.js";
import {Migration20261122000100_tenant_base} from "./tenant/Migration20261122000100_tenant_base.js";
import {Migration20261122010000_readings_recorded_at_brin} from "./tenant/Migration20261122010000_readings_recorded_at_brin.js";
import {Migration20261122020000_readings_without_device_fk} from "./tenant/Migration20261122020000_readings_without_device_fk.js";
import {Migration20261201100000_alert_rule_episode_state} from "./tenant/Migration20261201100000_alert_rule_episode_state.js";
import {Migration20261202000100_readings_partitioned} from "./tenant/Migration20261202000100_readings_partitioned.js";
import {Migration20261206090000_alert_rules_archived} from "./tenant/Migration20261206090000_alert_rules_archived.js";
import {Migration20261206110000_alarms} from "./tenant/Migration20261206110000_alarms.js";
import {Migration20261206120000_notification_schedules} from "./tenant/Migration20261206120000_notification_schedules.js";
import {Migration20261206100000_notifications} from "./tenant/Migration20261206100000_notifications.js";
import {Migration20261206200100_users_change_feed} from "./tenant/Migration20261206200100_users_change_feed.js";

/*
 * Migrations are listed explicitly (not discovered from disk) so that they run the same from
 * src/ under SWC, from dist/, and inside the tests. Append new ones at the end of their list.
 */

/** `public` schema of the default database: the tenant registry (and its settings), DailyStats' dirty days, device keys, the users' change feed. */
export const platformMigrations: MigrationObject[] = [
  {name: "Migration20261122000000_tenant_registry", class: Migration20261122000000_tenant_registry},
  {name: "Migration20261201120000_daily_stats_dirty_days", class: Migration20261201120000_daily_stats_dirty_days},
  {name: "Migration20261202000000_tenant_raw_retention", class: Migration20261202000000_tenant_raw_retention},
  {name: "Migration20261203100000_device_keys", class: Migration20261203100000_device_keys},
  {name: "Migration20261206090100_tenant_raw_retention_grace", class: Migration20261206090100_tenant_raw_retention_grace},
  {name: "Migration20261206200000_user_changes", class: Migration20261206200000_user_changes},
  {
    name: "Migration20261207180000_daily_stats_dirty_days_lost_backends",
    class: Migration20261207180000_daily_stats_dirty_days_lost_backends
  }
];

/** Applied to every tenant schema, each keeping its own `mikro_orm_migrations` table. */
export const tenantMigrations: MigrationObject[] = [
  {name: "Migration20261122000100_tenant_base", class: Migration20261122000100_tenant_base},
  {name: "Migration20261122010000_readings_recorded_at_brin", class: Migration20261122010000_readings_recorded_at_brin},
  {name: "Migration20261122020000_readings_without_device_fk", class: Migration20261122020000_readings_without_device_fk},
  {name: "Migration20261201100000_alert_rule_episode_state", class: Migration20261201100000_alert_rule_episode_state},
  {name: "Migration20261202000100_readings_partitioned", class: Migration20261202000100_readings_partitioned},
  {name: "Migration20261206090000_alert_rules_archived", class: Migration20261206090000_alert_rules_archived},
  {name: "Migration20261206100000_notifications", class: Migration20261206100000_notifications},
  {name: "Migration20261206110000_alarms", class: Migration20261206110000_alarms},
  {name: "Migration20261206120000_notification_schedules", class: Migration20261206120000_notification_schedules},
  {name: "Migration20261206200100_users_change_feed", class: Migration20261206200100_users_change_feed}
];

/** The analytics database. */
export const analyticsMigrations: MigrationObject[] = [
  {name: "Migration20261122000200_daily_stats", class: Migration20261122000200_daily_stats},
  {name: "Migration20261201110000_daily_stats_exact_merge", class: Migration20261201110000_daily_stats_exact_merge}
];
