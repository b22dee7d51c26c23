import {Migration} from "@mikro-orm/migrations";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";

/**
 * `DELETE /alert-rules/{id}` archives a rule instead of deleting it (and, through the alerts'
 * foreign key, its whole alert history): `archived_at` is when. An archived rule is also never
 * enabled — the constraint holds it — so every statement that evaluates rules (they read
 * `is_enabled` ones only) skips it without a predicate of its own. Adding a nullable column
 * without a default rewrites nothing; the constraint holds for every existing row at once
 * (they all have archived_at null).
 */
export class Migration20261206090000_alert_rules_archived extends Migration {
  override up(): void {
    const s = quoteTenantSchema(this.config.get("schema"));
    this.addSql(`alter table ${s}."alert_rules"
      add column "archived_at" timestamptz null,
      add constraint "alert_rules_archived_not_enabled" check ("archived_at" is null or not "is_enabled");`);
  }

  override down(): void {
    const s = quoteTenantSchema(this.config.get("schema"));
    this.addSql(
      `alter table ${s}."alert_rules" drop constraint if exists "alert_rules_archived_not_enabled", drop column if exists "archived_at";`
    );
  }
}
