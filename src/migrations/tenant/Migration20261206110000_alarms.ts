import {Migration} from "@mikro-orm/migrations";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";

/**
 * Alarms with duration, hysteresis, severity and silent devices (docs/api.md, "Alerts"):
 * - alert_rules: `kind` (threshold | no_data), `for_seconds`, `clear_delta_celsius`, `severity`,
 *   `silence_seconds`, `remind_every_seconds`. A no_data rule has no condition or threshold, so
 *   those become nullable, and one CHECK holds which fields each kind has. Existing rules become
 *   threshold rules with for_seconds 0 and δ 0: exactly their old behaviour.
 * - alerts: `breach_started_at` (the run's first reading, or the silence's start), `silent_since`
 *   (no_data), `retracted_at` (a late reading left the run too short: the episode is kept, not
 *   deleted), `severity` (the rule's when it fired), `acknowledgement_comment`, and `version`
 *   (bumped on every change, for the events that announce it). A no_data episode has no reading,
 *   so the reading's columns become nullable. A retracted episode is not open: the one-open
 *   index leaves it out.
 * - devices: `last_arrival_at`, the server time of the device's latest ingest, kept only for
 *   devices with an enabled no_data rule (the sweep reads it, one indexed query per tenant).
 * New columns with constant defaults are catalogue-only changes; the one rewrite is the backfill
 * of breach_started_at, on the (small) alerts table.
 */
export class Migration20261206110000_alarms extends Migration {
  override up(): void {
    const s = quoteTenantSchema(this.config.get("schema"));
    this.addSql(`alter table ${s}."alert_rules"
      add column "kind" text not null default 'threshold' check ("kind" in ('threshold', 'no_data')),
      alter column "condition" drop not null,
      alter column "threshold_celsius" drop not null,
      add column "for_seconds" int not null default 0 check ("for_seconds" between 0 and 86400),
      add column "clear_delta_celsius" double precision not null default 0 check ("clear_delta_celsius" between 0 and 100),
      add column "severity" text not null default 'warning' check ("severity" in ('warning', 'critical')),
      add column "silence_seconds" int null check ("silence_seconds" between 60 and 604800),
      add column "remind_every_seconds" int null check ("remind_every_seconds" between 300 and 604800),
      add constraint "alert_rules_kind_fields" check (case "kind"
        when 'threshold' then "condition" is not null and "threshold_celsius" is not null and "silence_seconds" is null
        else "condition" is null and "threshold_celsius" is null and "silence_seconds" is not null and "for_seconds" = 0 and "clear_delta_celsius" = 0
      end);`);
    // The no_data sweep's entry point: the tenant's enabled no_data rules, without reading the others.
    this.addSql(`create index "alert_rules_no_data_index" on ${s}."alert_rules" ("device_id") where "kind" = 'no_data' and "is_enabled";`);
    this.addSql(`alter table ${s}."alerts"
      add column "breach_started_at" timestamptz null,
      add column "silent_since" timestamptz null,
      add column "retracted_at" timestamptz null,
      add column "severity" text not null default 'warning' check ("severity" in ('warning', 'critical')),
      add column "acknowledgement_comment" text null check (char_length("acknowledgement_comment") <= 500),
      add column "version" int not null default 1,
      alter column "temperature_celsius" drop not null,
      alter column "peak_temperature_celsius" drop not null,
      alter column "last_reading_at" drop not null;`);
    this.addSql(`update ${s}."alerts" set "breach_started_at" = "fired_at";`);
    this.addSql(`alter table ${s}."alerts" alter column "breach_started_at" set not null;`);
    // While a deploy rolls, instances of the previous release still insert alerts without
    // breach_started_at: for them (runs of one reading) it is the firing reading's time. A later
    // release can drop this once no such instance is left.
    this.addSql(`create function ${s}."alerts_breach_started_at_default"() returns trigger language plpgsql as $$
      begin
        new."breach_started_at" := coalesce(new."breach_started_at", new."fired_at");
        return new;
      end $$;`);
    this.addSql(`create trigger "alerts_breach_started_at_default" before insert on ${s}."alerts"
      for each row when (new."breach_started_at" is null) execute function ${s}."alerts_breach_started_at_default"();`);
    this.addSql(`drop index ${s}."alerts_one_open_per_rule";`);
    this.addSql(
      `create unique index "alerts_one_open_per_rule" on ${s}."alerts" ("rule_id") where "resolved_at" is null and "retracted_at" is null;`
    );
    // GET /alerts: the tenant's alerts newest first, a page at a time.
    this.addSql(`create index "alerts_fired_at_index" on ${s}."alerts" ("fired_at" desc, "id" desc);`);
    this.addSql(`alter table ${s}."devices" add column "last_arrival_at" timestamptz null;`);
  }

  override down(): void {
    const s = quoteTenantSchema(this.config.get("schema"));
    this.addSql(`alter table ${s}."devices" drop column if exists "last_arrival_at";`);
    this.addSql(`drop trigger if exists "alerts_breach_started_at_default" on ${s}."alerts";`);
    this.addSql(`drop function if exists ${s}."alerts_breach_started_at_default"();`);
    this.addSql(`drop index if exists ${s}."alerts_fired_at_index";`);
    this.addSql(`delete from ${s}."alerts" where "retracted_at" is not null or "temperature_celsius" is null;`);
    this.addSql(`drop index ${s}."alerts_one_open_per_rule";`);
    this.addSql(`create unique index "alerts_one_open_per_rule" on ${s}."alerts" ("rule_id") where "resolved_at" is null;`);
    this.addSql(`alter table ${s}."alerts"
      drop column "breach_started_at", drop column "silent_since", drop column "retracted_at", drop column "severity",
      drop column "acknowledgement_comment", drop column "version",
      alter column "temperature_celsius" set not null, alter column "peak_temperature_celsius" set not null,
      alter column "last_reading_at" set not null;`);
    this.addSql(`drop index if exists ${s}."alert_rules_no_data_index";`);
    this.addSql(`delete from ${s}."alert_rules" where "kind" <> 'threshold';`);
    this.addSql(`alter table ${s}."alert_rules"
      drop constraint "alert_rules_kind_fields", drop column "kind", drop column "for_seconds", drop column "clear_delta_celsius",
      drop column "severity", drop column "silence_seconds", drop column "remind_every_seconds",
      alter column "condition" set not null, alter column "threshold_celsius" set not null;`);
  }
}
