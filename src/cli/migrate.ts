/**
 * npm run migrate: creates missing databases, applies the platform (tenant registry) and
 * analytics migrations, then brings every registered tenant schema up to date. Safe to run
 * twice, and while servers run (it takes the same advisory locks they do).
 */
import {MikroORM} from "@mikro-orm/postgresql";
import {env} from "../config/env.js";
import {analyticsOrmOptions, defaultOrmOptions} from "../config/mikro-orm.config.js";
import {ensureDatabases} from "../platform/db/ensure-databases.js";
import {withAdvisoryLock} from "../platform/tenancy/advisory-lock.js";
import {migrateTenantSchema} from "../platform/tenancy/tenant-migrator.js";

const settings = env();
for (const name of await ensureDatabases([settings.databaseUrl, settings.analyticsDatabaseUrl])) console.log(`created database ${name}`);
const orm = await MikroORM.init({...defaultOrmOptions(settings), pool: {min: 0, max: 3}});
const analytics = await MikroORM.init({...analyticsOrmOptions(settings), pool: {min: 0, max: 1}});
try {
  await withAdvisoryLock(orm, "smart-thermo:migrations", async () => {
    const platform = await orm.getMigrator().up();
    console.log(`platform: ${platform.length ? platform.map((m) => m.name).join(", ") : "up to date"}`);
    const analyticsApplied = await analytics.getMigrator().up();
    console.log(`analytics: ${analyticsApplied.length ? analyticsApplied.map((m) => m.name).join(", ") : "up to date"}`);
    const tenants = await orm.em.fork().getConnection().execute<{id: string}[]>(`select "id" from "public"."tenants" order by "id"`);
    for (const {id} of tenants) {
      const applied = await withAdvisoryLock(orm, `smart-thermo:tenant:${id}`, () => migrateTenantSchema(settings, id));
      console.log(`tenant ${id}: ${applied.length ? applied.join(", ") : "up to date"}`);
    }
    console.log(`${tenants.length} tenant schema(s) checked`);
  });
} catch (error) {
  console.error("migration failed:", error instanceof Error ? error.message : error);
  process.exitCode = 1;
} finally {
  await orm.close(true);
  await analytics.close(true);
}
