import {defineConfig, type Options} from "@mikro-orm/postgresql";
import {analyticsMigrations, platformMigrations} from "../migrations/index.js";
import {features} from "../modules/index.js";
import {baseOrmOptions} from "../platform/db/orm-options.js";
import {ANALYTICS_CONTEXT, DEFAULT_CONTEXT} from "../platform/db/orm-contexts.js";
import {Tenant} from "../platform/tenancy/tenant.entity.js";
import type {AppConfig} from "./app-config.js";

/** Entities stored in each tenant's schema (`schema: "*"`), as the features declare them. */
export const TENANT_ENTITIES = features.flatMap((feature) => feature.tenantEntities ?? []);
const ANALYTICS_ENTITIES = features.flatMap((feature) => feature.analyticsEntities ?? []);

/** Tenant data (schema per tenant) and the tenant registry (`public`). */
export function defaultOrmOptions(config: AppConfig): Options {
  return defineConfig({
    ...baseOrmOptions(config, config.databaseUrl, platformMigrations),
    contextName: DEFAULT_CONTEXT,
    entities: [Tenant, ...TENANT_ENTITIES],
    // The migration generator would propose dropping tenant schemas it does not know about.
    schemaGenerator: {ignoreSchema: ["*"]}
  });
}

/** DailyStats in its own database, so that it can move to a reporting server. */
export function analyticsOrmOptions(config: AppConfig): Options {
  return defineConfig({
    ...baseOrmOptions(config, config.analyticsDatabaseUrl, analyticsMigrations),
    contextName: ANALYTICS_CONTEXT,
    entities: ANALYTICS_ENTITIES
  });
}
