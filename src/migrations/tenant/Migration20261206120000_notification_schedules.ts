import {Migration} from "@mikro-orm/migrations";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";

/**
 * What the notifications' scheduled scan needs (docs/api.md, "Silences" and "Notifications: events"):
 * - alerts: `last_reminded_at`, the slot of the latest `alert.reminder` (reminders fall every
 *   `remind_every_seconds` after `fired_at`); a partial index on the open, unacknowledged alerts,
 *   the only ones the reminder scan reads.
 * - silences: `released_at`, set once the end of a silence has been handled (the alerts it held
 *   back sent with `afterSilence`); the scan finds ended, unreleased silences by a partial index.
 *   Silences that had already ended count as released: their end was before this code existed.
 * - events: the `alert.fired` events of one alert (is its latest one held back?), by an expression
 *   index; dispatched events by age (the purge past OUTBOX_RETENTION_DAYS).
 * - webhook_deliveries: by event, for the question above and for the purge's cascade (without
 *   it, every deleted event scans the deliveries).
 */
export class Migration20261206120000_notification_schedules extends Migration {
  override up(): void {
    const s = quoteTenantSchema(this.config.get("schema"));
    this.addSql(`alter table ${s}."alerts" add column "last_reminded_at" timestamptz null;`);
    this.addSql(
      `create index "alerts_open_unacknowledged_index" on ${s}."alerts" ("rule_id") where "resolved_at" is null and "retracted_at" is null and "acknowledged_at" is null;`
    );
    this.addSql(`alter table ${s}."silences" add column "released_at" timestamptz null;`);
    this.addSql(`update ${s}."silences" set "released_at" = "ends_at" where "ends_at" <= now();`);
    this.addSql(`create index "silences_unreleased_index" on ${s}."silences" ("ends_at") where "released_at" is null;`);
    this.addSql(
      `create index "events_alert_fired_index" on ${s}."events" (("body" #>> '{data,alert,id}'), "seq") where "type" = 'alert.fired';`
    );
    this.addSql(`create index "events_dispatched_at_index" on ${s}."events" ("dispatched_at") where "dispatched_at" is not null;`);
    this.addSql(`create index "webhook_deliveries_event_index" on ${s}."webhook_deliveries" ("event_id");`);
  }

  override down(): void {
    const s = quoteTenantSchema(this.config.get("schema"));
    this.addSql(`drop index if exists ${s}."webhook_deliveries_event_index";`);
    this.addSql(`drop index if exists ${s}."events_dispatched_at_index";`);
    this.addSql(`drop index if exists ${s}."events_alert_fired_index";`);
    this.addSql(`drop index if exists ${s}."silences_unreleased_index";`);
    this.addSql(`alter table ${s}."silences" drop column "released_at";`);
    this.addSql(`drop index if exists ${s}."alerts_open_unacknowledged_index";`);
    this.addSql(`alter table ${s}."alerts" drop column "last_reminded_at";`);
  }
}
