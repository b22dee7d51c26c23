import type {MigrationObject} from "@mikro-orm/core";
import {Migrator} from "@mikro-orm/migrations";
import type {Options} from "@mikro-orm/postgresql";
import type {AppConfig} from "../../config/app-config.js";

/**
 * The options every MikroORM instance of the process shares (both contexts, the per-tenant
 * migrators): one Postgres database, its pool and timeouts, and its migrations. Entities are
 * added by whoever builds the ORM (config/mikro-orm.config.ts lists the features' entities).
 */
export function baseOrmOptions(config: AppConfig, url: string, migrationsList: MigrationObject[]) {
  return {
    clientUrl: url,
    extensions: [Migrator],
    // Explicit entity classes: no folder scanning, the same under SWC, tsc output and vitest.
    discovery: {disableDynamicFileAccess: true, requireEntitiesArray: true},
    pool: {
      min: config.db.poolMin,
      max: config.db.poolMax,
      // Fail a request quickly when Postgres is unreachable (it becomes a 503) instead of queueing for a minute.
      acquireTimeoutMillis: 5_000,
      createTimeoutMillis: 3_000,
      idleTimeoutMillis: 30_000
    },
    driverOptions: {
      connection: {
        statement_timeout: config.db.statementTimeoutMs,
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
    debug: config.db.debug
  } satisfies Partial<Options>;
}
