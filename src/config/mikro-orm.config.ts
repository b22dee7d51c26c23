import {defineConfig, type Options} from "@mikro-orm/postgresql";
import {Migrator} from "@mikro-orm/migrations";
import type {MigrationObject} from "@mikro-orm/core";
import {analyticsMigrations, platformMigrations, tenantMigrations} from "../migrations/index.js";
import {Alert} from "../modules/alerts/alert.entity.js";
import {AlertRule} from "../modules/alerts/alert-rule.entity.js";
import {Device} from "../modules/devices/device.entity.js";
import {TemperatureReading} from "../modules/readings/reading.entity.js";
import {DailyStats} from "../modules/stats/daily-stats.entity.js";
import {User} from "../modules/users/user.entity.js";
import {Tenant} from "../platform/tenancy/tenant.entity.js";
import type {Env} from "./env.js";

export const DEFAULT_CONTEXT = "default";
export const ANALYTICS_CONTEXT = "analytics";

/** Entities stored in each tenant's schema (`schema: "*"`). */
export const TENANT_ENTITIES = [User, Device, TemperatureReading, AlertRule, Alert];

function common(env: Env, url: string, migrationsList: MigrationObject[]) {
  return {
    clientUrl: url,
    extensions: [Migrator],
    // Explicit entity classes: no folder scanning, the same under SWC, tsc output and vitest.
    discovery: {disableDynamicFileAccess: true, requireEntitiesArray: true},
    pool: {
      min: env.db.poolMin,
      max: env.db.poolMax,
      // Fail a request quickly when Postgres is unreachable (it becomes a 503) instead of queueing for a minute.
      acquireTimeoutMillis: 5_000,
      createTimeoutMillis: 3_000,
      idleTimeoutMillis: 30_000
    },
    driverOptions: {
      connection: {
        statement_timeout: env.db.statementTimeoutMs,
        application_name: "smart-thermo"
      }
    },
    // Databases are created before the ORMs connect (ensureDatabases: MikroORM's check-then-create
    // races when instances boot together); tables only ever come from the migration files.
    ensureDatabase: false,
    migrations: {
      migrationsList,
      tableName: "mikro_orm_migrations",
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      silent: true
    },
    forceUtcTimezone: true,
    // The soft-delete filter hides users, not what they own: don't join relations to apply filters
    // (it would also add a join to every device/alert query).
    autoJoinRefsForFilters: false,
    debug: process.env.MIKRO_ORM_DEBUG === "true"
  } satisfies Partial<Options>;
}

/** Tenant data (schema per tenant) and the tenant registry (`public`). */
export function defaultOrmOptions(env: Env): Options {
  return defineConfig({
    ...common(env, env.databaseUrl, platformMigrations),
    contextName: DEFAULT_CONTEXT,
    entities: [Tenant, ...TENANT_ENTITIES],
    // The migration generator would propose dropping tenant schemas it does not know about.
    schemaGenerator: {ignoreSchema: ["*"]}
  });
}

/** DailyStats in its own database, so that it can move to a reporting server. */
export function analyticsOrmOptions(env: Env): Options {
  return defineConfig({
    ...common(env, env.analyticsDatabaseUrl, analyticsMigrations),
    contextName: ANALYTICS_CONTEXT,
    entities: [DailyStats]
  });
}

/**
 * A short-lived ORM that migrates one tenant's schema. MikroORM's migrator takes the schema (of
 * the tables and of its own `mikro_orm_migrations` table) from its configuration, so each tenant
 * gets a config of its own; no entities are needed, which keeps it cheap to start.
 */
export function tenantMigratorOptions(env: Env, tenantId: string): Options {
  return defineConfig({
    ...common(env, env.databaseUrl, tenantMigrations),
    pool: {min: 0, max: 1},
    ensureDatabase: false,
    schema: tenantId,
    entities: [],
    discovery: {warnWhenNoEntities: false, disableDynamicFileAccess: true},
    contextName: `tenant-migrator:${tenantId}`,
    allowGlobalContext: true
  });
}
