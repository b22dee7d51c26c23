import {MikroORM} from "@mikro-orm/postgresql";
import {tenantMigratorOptions} from "../../config/mikro-orm.config.js";
import type {Env} from "../../config/env.js";
import {tenantMigrations} from "../../migrations/index.js";
import {assertTenantId} from "./tenant-id.js";

/** The name of the newest tenant migration: a schema whose table lists it is up to date. */
export const LATEST_TENANT_MIGRATION = tenantMigrations.at(-1)!.name;

/** Applies the pending tenant migrations to one tenant's schema (creating it if needed). */
export async function migrateTenantSchema(env: Env, tenantId: string): Promise<string[]> {
  const orm = await MikroORM.init(tenantMigratorOptions(env, assertTenantId(tenantId)));
  try {
    const applied = await orm.getMigrator().up();
    return applied.map((migration) => migration.name);
  } finally {
    await orm.close(true);
  }
}
