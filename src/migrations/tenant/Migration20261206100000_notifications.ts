import {Migration} from "@mikro-orm/migrations";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";

/**
 * Notifications (docs/api.md, "Receiving webhooks" and "Live stream"):
 * - `events`: the outbox. A row is written in the transaction of the change it announces and
 *   moved to the stream and to webhook deliveries by the relay once committed (`dispatched_at`).
 *   `seq` is the relay's reading order; the partial index keeps finding undispatched rows cheap
 *   however many dispatched ones a tenant keeps for replays.
 * - `webhook_endpoints`, `webhook_deliveries` (one per event and endpoint: the receiver's
 *   idempotency key is the event id) and `webhook_attempts` (the delivery log).
 * - `silences`: they hold back webhook deliveries of alert events in their scope.
 */
export class Migration20261206100000_notifications extends Migration {
  override up(): void {
    const s = quoteTenantSchema(this.config.get("schema"));
    this.addSql(`create table ${s}."events" (
      "seq" bigint generated always as identity primary key,
      "id" uuid not null unique,
      "type" text not null,
      "occurred_at" timestamptz not null,
      "body" jsonb not null,
      "endpoint_id" uuid null,
      "dispatched_at" timestamptz null
    );`);
    this.addSql(`create index "events_undispatched_index" on ${s}."events" ("seq") where "dispatched_at" is null;`);
    this.addSql(`create table ${s}."webhook_endpoints" (
      "id" uuid primary key,
      "url" text not null,
      "description" text null,
      "event_types" text[] not null,
      "is_enabled" boolean not null default true,
      "disabled_reason" text null,
      "secret" text not null,
      "previous_secret" text null,
      "previous_secret_expires_at" timestamptz null,
      "failing_since" timestamptz null,
      "created_at" timestamptz not null default now(),
      "updated_at" timestamptz not null default now()
    );`);
    this.addSql(`create table ${s}."webhook_deliveries" (
      "id" uuid primary key,
      "endpoint_id" uuid not null references ${s}."webhook_endpoints" ("id") on delete cascade,
      "event_id" uuid not null references ${s}."events" ("id") on delete cascade,
      "status" text not null check ("status" in ('pending', 'succeeded', 'failed', 'suppressed')),
      "attempts" int not null default 0,
      "next_attempt_at" timestamptz null,
      "created_at" timestamptz not null default now(),
      "updated_at" timestamptz not null default now(),
      constraint "webhook_deliveries_endpoint_event_unique" unique ("endpoint_id", "event_id")
    );`);
    this.addSql(
      `create index "webhook_deliveries_endpoint_created_index" on ${s}."webhook_deliveries" ("endpoint_id", "created_at" desc, "id");`
    );
    this.addSql(`create index "webhook_deliveries_due_index" on ${s}."webhook_deliveries" ("next_attempt_at") where "status" = 'pending';`);
    this.addSql(`create table ${s}."webhook_attempts" (
      "id" bigint generated always as identity primary key,
      "delivery_id" uuid not null references ${s}."webhook_deliveries" ("id") on delete cascade,
      "attempted_at" timestamptz not null,
      "status_code" int null,
      "error" text null,
      "duration_ms" int not null
    );`);
    this.addSql(`create index "webhook_attempts_delivery_index" on ${s}."webhook_attempts" ("delivery_id", "id");`);
    this.addSql(`create table ${s}."silences" (
      "id" uuid primary key,
      "device_id" uuid null references ${s}."devices" ("id") on delete cascade,
      "rule_id" uuid null references ${s}."alert_rules" ("id") on delete cascade,
      "starts_at" timestamptz not null,
      "ends_at" timestamptz not null,
      "comment" text not null,
      "created_by" text not null,
      "created_at" timestamptz not null default now(),
      constraint "silences_ends_after_start" check ("ends_at" > "starts_at")
    );`);
    this.addSql(`create index "silences_ends_at_index" on ${s}."silences" ("ends_at");`);
  }

  override down(): void {
    const s = quoteTenantSchema(this.config.get("schema"));
    this.addSql(`drop table if exists ${s}."silences";`);
    this.addSql(`drop table if exists ${s}."webhook_attempts";`);
    this.addSql(`drop table if exists ${s}."webhook_deliveries";`);
    this.addSql(`drop table if exists ${s}."webhook_endpoints";`);
    this.addSql(`drop table if exists ${s}."events";`);
  }
}
