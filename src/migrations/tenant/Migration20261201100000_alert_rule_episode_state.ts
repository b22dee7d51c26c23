import {Migration} from "@mikro-orm/migrations";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";

/**
 * The state a writer of readings decides on, kept on the rule row itself:
 * - `evaluated_from`: readings recorded before it are not evaluated (the rule was enabled again or
 *   its condition changed then; null for a rule that has been in force since it was created);
 * - `open_alert_id`: the rule's open episode, if any;
 * - `episodes_until`: the latest `resolved_at` of its episodes.
 * A write that cannot change an episode is one autocommitted statement that reads this row FOR
 * SHARE; a write that may change one locks it FOR UPDATE and rewrites it before committing. In
 * READ COMMITTED a statement that waited for that lock sees the rule row as committed (Postgres
 * re-reads a locked row that changed), but the rest of the database as of its start: so whatever
 * the decision needs must be on the locked row, not in the alerts table.
 * Also an index for the latest resolved episode of a rule.
 */
export class Migration20261201100000_alert_rule_episode_state extends Migration {
  override up(): void {
    const s = quoteTenantSchema(this.config.get("schema"));
    this.addSql(`alter table ${s}."alert_rules"
      add column "evaluated_from" timestamptz null,
      add column "open_alert_id" uuid null,
      add column "episodes_until" timestamptz null;`);
    this.addSql(`update ${s}."alert_rules" r set
      "open_alert_id" = (select a."id" from ${s}."alerts" a where a."rule_id" = r."id" and a."resolved_at" is null),
      "episodes_until" = (select max(a."resolved_at") from ${s}."alerts" a where a."rule_id" = r."id");`);
    this.addSql(`create index "alerts_rule_resolved_at_index" on ${s}."alerts" ("rule_id", "resolved_at");`);
  }

  override down(): void {
    const s = quoteTenantSchema(this.config.get("schema"));
    this.addSql(`drop index if exists ${s}."alerts_rule_resolved_at_index";`);
    this.addSql(`alter table ${s}."alert_rules" drop column "evaluated_from", drop column "open_alert_id", drop column "episodes_until";`);
  }
}
