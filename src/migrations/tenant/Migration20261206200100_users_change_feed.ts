import {Migration} from "@mikro-orm/migrations";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";

/**
 * Every write to the tenant's users lands in the users' change feed (`public.user_changes`, the
 * platform migration `user_changes`), which every instance's CallerUsers polls. A trigger rather
 * than a line in the service: a user deleted by hand in SQL reaches the caches too.
 */
export class Migration20261206200100_users_change_feed extends Migration {
  override up(): void {
    const s = quoteTenantSchema(this.config.get("schema"));
    this.addSql(
      `create trigger "users_change_feed" after insert or update or delete on ${s}."users" for each row execute function "public"."note_user_change"();`
    );
  }

  override down(): void {
    const s = quoteTenantSchema(this.config.get("schema"));
    this.addSql(`drop trigger if exists "users_change_feed" on ${s}."users";`);
  }
}
