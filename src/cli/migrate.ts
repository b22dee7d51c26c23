/**
 * npm run migrate: creates missing databases (and, given DATABASE_ADMIN_URL, the application's
 * role owning them: docs/database-role.md), refuses to run as a superuser, applies the platform (tenant registry) and
 * analytics migrations, then brings every registered tenant schema up to date (migrateAll, the
 * same routine the server runs at start). Safe to run twice, and while servers run (it takes the
 * same advisory locks they do). Needs Postgres only.
 */
import {MikroORM} from "@mikro-orm/postgresql";
import {loadConfig} from "../config/app-config.js";
import {analyticsOrmOptions, defaultOrmOptions} from "../config/mikro-orm.config.js";
import {prepareDatabases} from "../platform/db/database-role.js";
import {migrateAll} from "../platform/tenancy/tenant-migrator.js";

const config = loadConfig({developmentWhenUnset: true});
const prepared = await prepareDatabases({
  urls: [config.databaseUrl, config.analyticsDatabaseUrl],
  adminUrl: config.databaseAdminUrl,
  allowSuperuser: config.db.allowSuperuser
}).catch((error: unknown) => {
  console.error("migration failed:", error instanceof Error ? error.message : error);
  process.exit(1);
});
for (const line of prepared) console.log(line);
const orm = await MikroORM.init({...defaultOrmOptions(config), pool: {min: 0, max: 3}});
const analytics = await MikroORM.init({...analyticsOrmOptions(config), pool: {min: 0, max: 1}});
const list = (names: string[]) => (names.length ? names.join(", ") : "up to date");
try {
  const report = await migrateAll(orm, analytics, config);
  console.log(`platform: ${list(report.platform)}`);
  console.log(`analytics: ${list(report.analytics)}`);
  for (const {tenantId, applied} of report.tenants) console.log(`tenant ${tenantId}: ${list(applied)}`);
  console.log(`${report.tenants.length} tenant schema(s) checked`);
} catch (error) {
  console.error("migration failed:", error instanceof Error ? error.message : error);
  process.exitCode = 1;
} finally {
  await orm.close(true);
  await analytics.close(true);
}
