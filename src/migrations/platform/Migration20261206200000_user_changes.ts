import {Migration} from "@mikro-orm/migrations";

/**
 * The users' change feed (CallerUsers): every instance caches its callers' user rows for minutes
 * and polls this table each second, so a user deleted (or changed, or created) on one instance,
 * or in SQL, is seen by every other within docs/api.md's 5 s at one indexed query per process.
 * - `user_changes`: one row per user of every tenant, stamped at its latest write (`changed_at`,
 *   the clock of the writing statement); its size is the number of users, with nothing to purge.
 * - `note_user_change()`: the trigger function each tenant's `users` table calls (the tenant
 *   migration `users_change_feed`), so no write path, the ORM's or a hand-written one, can skip it.
 */
export class Migration20261206200000_user_changes extends Migration {
  override up(): void {
    this.addSql(`create table if not exists "public"."user_changes" (
      "tenant_id" varchar(63) not null,
      "subject" varchar(255) not null,
      "changed_at" timestamptz not null,
      primary key ("tenant_id", "subject")
    );`);
    this.addSql(`create index if not exists "user_changes_changed_at" on "public"."user_changes" ("changed_at");`);
    this.addSql(`create or replace function "public"."note_user_change"() returns trigger language plpgsql as $$
begin
  insert into "public"."user_changes" ("tenant_id", "subject", "changed_at")
  values (TG_TABLE_SCHEMA, case when TG_OP = 'DELETE' then OLD."subject" else NEW."subject" end, clock_timestamp())
  on conflict ("tenant_id", "subject") do update set "changed_at" = excluded."changed_at";
  if TG_OP = 'UPDATE' and NEW."subject" is distinct from OLD."subject" then
    insert into "public"."user_changes" ("tenant_id", "subject", "changed_at")
    values (TG_TABLE_SCHEMA, OLD."subject", clock_timestamp())
    on conflict ("tenant_id", "subject") do update set "changed_at" = excluded."changed_at";
  end if;
  return null;
end
$$;`);
  }

  override down(): void {
    this.addSql(`drop function if exists "public"."note_user_change"() cascade;`);
    this.addSql(`drop table if exists "public"."user_changes";`);
  }
}
