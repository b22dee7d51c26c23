import type pg from "pg";
import {quoteTenantSchema} from "../../src/platform/tenancy/tenant-id.js";

/**
 * The application names (which connection: the ORM's pool, the ingest or read connections) of the
 * statements of `tenant` waiting for a lock on its alert rules, read on `db` (a connection of its
 * own, in or out of a transaction). This tenant's statements only: other files' writes may wait on
 * their own rules meanwhile.
 */
export async function lockWaitersOf(db: pg.ClientBase, tenant: string): Promise<string[]> {
  // pg_stat_activity is read once per transaction unless told to read it again.
  await db.query("select pg_stat_clear_snapshot()");
  const {rows} = await db.query<{application: string}>(
    `select application_name as "application" from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock' and query like $1`,
    [`%${quoteTenantSchema(tenant)}."alert_rules"%`]
  );
  return rows.map((row) => row.application);
}
