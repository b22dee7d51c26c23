import {Migration} from "@mikro-orm/migrations";

/**
 * A shortened raw retention waits out a grace period (RETENTION_GRACE_DAYS) before the nightly job
 * drops by it: until `raw_retention_effective_at` the job keeps dropping by
 * `raw_retention_days_before` (the retention in force when the shortening was made; NULL keeps
 * everything), so that an admin who set it back within the grace lost nothing. Both NULL (every
 * existing tenant): `raw_retention_days` is in force. Nullable columns without a default rewrite nothing.
 */
export class Migration20261206090100_tenant_raw_retention_grace extends Migration {
  override up(): void {
    this.addSql(`alter table "public"."tenants"
      add column if not exists "raw_retention_effective_at" timestamptz null,
      add column if not exists "raw_retention_days_before" integer null constraint "tenants_raw_retention_days_before_positive" check ("raw_retention_days_before" > 0);`);
  }

  override down(): void {
    this.addSql(
      `alter table "public"."tenants" drop column if exists "raw_retention_effective_at", drop column if exists "raw_retention_days_before";`
    );
  }
}
