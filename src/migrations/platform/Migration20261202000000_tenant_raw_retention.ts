import {Migration} from "@mikro-orm/migrations";

/**
 * `rawRetentionDays`, a tenant setting (`PATCH /api/v1/admin/tenant`): raw readings older than it
 * are refused and their monthly partitions are dropped nightly. NULL (the default, and every
 * existing tenant) keeps everything. Adding a nullable column without a default rewrites nothing.
 */
export class Migration20261202000000_tenant_raw_retention extends Migration {
  override up(): void {
    this.addSql(
      `alter table "public"."tenants" add column if not exists "raw_retention_days" integer null constraint "tenants_raw_retention_days_positive" check ("raw_retention_days" > 0);`
    );
  }

  override down(): void {
    this.addSql(`alter table "public"."tenants" drop column if exists "raw_retention_days";`);
  }
}
