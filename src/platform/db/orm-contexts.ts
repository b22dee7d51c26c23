/**
 * The names of the two MikroORM contexts (@tsed/mikro-orm `contextName`): `default` holds tenant
 * data (one schema per tenant) and the tenant registry, `analytics` the DailyStats database.
 */
export const DEFAULT_CONTEXT = "default";
export const ANALYTICS_CONTEXT = "analytics";
