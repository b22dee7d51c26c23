import {Migration} from "@mikro-orm/migrations";

/** The tenant registry lives in `public` of the default database: platform metadata only. */
export class Migration20261122000000_tenant_registry extends Migration {
  override up(): void {
    this.addSql(`create table if not exists "public"."tenants" (
      "id" varchar(63) not null primary key,
      "timezone" varchar(64) not null default 'UTC',
      "created_at" timestamptz not null default now()
    );`);
  }

  override down(): void {
    this.addSql(`drop table if exists "public"."tenants";`);
  }
}
