import {defineConfig, MikroORM, type Options} from "@mikro-orm/postgresql";
import type {AppConfig} from "../../config/app-config.js";
import {tenantMigrations} from "../../migrations/index.js";
import {withAdvisoryLock} from "../db/advisory-lock.js";
import {scopedMigrator} from "../db/scoped-migrator.js";
import {baseOrmOptions} from "../db/orm-options.js";
import {queryRows} from "../db/sql.js";
import {assertTenantId} from "./tenant-id.js";

/** The name of the newest tenant migration: a schema whose table lists it is up to date. */
export const LATEST_TENANT_MIGRATION = tenantMigrations.at(-1)!.name;

/** Advisory lock keys: every process that migrates takes the same ones (startup, `npm run migrate`, first tokens). */
export const MIGRATIONS_LOCK = "smart-thermo:migrations";
export const tenantLock = (tenantId: string) => `smart-thermo:tenant:${tenantId}`;

export interface MigrationReport {
  platform: string[];
  analytics: string[];
  tenants: {tenantId: string; applied: string[]}[];
}

/**
 * Brings everything up to date, in order: the tenant registry (`public`), the analytics database,
 * then every registered tenant's schema. Server start and `npm run migrate` both run this; several
 * instances starting at once take turns on the advisory lock, and the later ones find nothing to do.
 */
export async function migrateAll(orm: MikroORM, analytics: MikroORM, config: AppConfig): Promise<MigrationReport> {
  return withAdvisoryLock(orm, MIGRATIONS_LOCK, async () => {
    const platform = (await scopedMigrator(orm).up()).map((m) => m.name);
    const analyticsApplied = (await scopedMigrator(analytics).up()).map((m) => m.name);
    const tenants = [];
    for (const {id} of await queryRows<{id: string}>(orm.em.fork(), `select "id" from "public"."tenants" order by "id"`, {})) {
      tenants.push({tenantId: id, applied: await withAdvisoryLock(orm, tenantLock(id), () => migrateTenantSchema(config, id))});
    }
    return {platform, analytics: analyticsApplied, tenants};
  });
}

/**
 * Applies the pending tenant migrations to one tenant's schema (creating it if needed).
 * @param to stop after this migration (tests and benchmarks build a schema as an older release left it),
 *   or apply only these (a test that needs one later migration ahead of the others)
 */
export async function migrateTenantSchema(config: AppConfig, tenantId: string, to?: string | {migrations: string[]}): Promise<string[]> {
  const orm = await MikroORM.init(tenantMigratorOptions(config, assertTenantId(tenantId)));
  try {
    const applied = await scopedMigrator(orm).up(to === undefined ? undefined : typeof to === "string" ? {to} : to);
    return applied.map((migration) => migration.name);
  } finally {
    await orm.close(true);
  }
}

/**
 * A short-lived ORM that migrates one tenant's schema. MikroORM's migrator takes the schema (of
 * the tables and of its own `mikro_orm_migrations` table) from its configuration, so each tenant
 * gets a config of its own; no entities are needed, which keeps it cheap to start. Two
 * connections: the migrations' transaction, and one for a migration that also works outside it
 * (the online conversion of Migration20261202000100_readings_partitioned).
 */
function tenantMigratorOptions(config: AppConfig, tenantId: string): Options {
  return defineConfig({
    ...baseOrmOptions(config, config.databaseUrl, tenantMigrations),
    pool: {min: 0, max: 2},
    schema: tenantId,
    entities: [],
    discovery: {warnWhenNoEntities: false, disableDynamicFileAccess: true},
    contextName: `tenant-migrator:${tenantId}`,
    allowGlobalContext: true
  });
}
