/**
 * npm run tenant -- create building_a [--timezone Europe/Berlin]
 * Registers a tenant and creates and migrates its schema: with TENANT_PROVISIONING=registered only
 * tenants created this way exist (any other tenant id gets 403). Running it again for a registered
 * tenant brings its schema up to date and changes nothing else. Needs Postgres only.
 */
import {parseArgs} from "node:util";
import {MikroORM} from "@mikro-orm/postgresql";
import {loadConfig} from "../config/app-config.js";
import {defaultOrmOptions} from "../config/mikro-orm.config.js";
import {isKnownToIntl} from "../common/local-time.js";
import {withAdvisoryLock} from "../platform/db/advisory-lock.js";
import {prepareDatabases} from "../platform/db/database-role.js";
import {queryRows} from "../platform/db/sql.js";
import {isValidTenantId} from "../platform/tenancy/tenant-id.js";
import {migrateTenantSchema, tenantLock} from "../platform/tenancy/tenant-migrator.js";

const USAGE =
  "usage: npm run tenant -- create <tenant_id> [--timezone <IANA zone, default UTC>]\n(tenant ids: lower-case letters, digits and _, starting with a letter; not a reserved schema)";
const {positionals, values} = parseArgs({allowPositionals: true, options: {timezone: {type: "string"}}});
const [command, tenantId] = positionals;
if (command !== "create" || !isValidTenantId(tenantId) || positionals.length !== 2) {
  console.error(USAGE);
  process.exit(2);
}

const config = loadConfig({developmentWhenUnset: true});
// As `npm run migrate`: a schema a superuser created could not be migrated by the application's role later.
try {
  for (const line of await prepareDatabases({
    urls: [config.databaseUrl, config.analyticsDatabaseUrl],
    adminUrl: config.databaseAdminUrl,
    allowSuperuser: config.db.allowSuperuser
  }))
    console.log(line);
} catch (error) {
  console.error("tenant create failed:", error instanceof Error ? error.message : error);
  process.exit(1);
}
const orm = await MikroORM.init({...defaultOrmOptions(config), pool: {min: 0, max: 2}});
try {
  const timezone = values.timezone ?? "UTC";
  const [known] = await queryRows<{known: boolean}>(
    orm.em.fork(),
    `select exists (select 1 from pg_timezone_names where name = :timezone) as "known"`,
    {timezone}
  );
  if (!isKnownToIntl(timezone) || !known?.known) {
    console.error(`"${timezone}" is not an IANA timezone name (e.g. Europe/Berlin, UTC)`);
    process.exitCode = 2;
  } else {
    const {applied, created, currentTimezone} = await withAdvisoryLock(orm, tenantLock(tenantId), async () => {
      const applied = await migrateTenantSchema(config, tenantId);
      const [row] = await queryRows<{created: boolean; timezone: string}>(
        orm.em.fork(),
        `with "created" as (insert into "public"."tenants" ("id", "timezone") values (:tenantId, :timezone) on conflict ("id") do nothing returning "timezone")
         select exists (select 1 from "created") as "created", coalesce((select "timezone" from "created"), (select "timezone" from "public"."tenants" where "id" = :tenantId)) as "timezone"`,
        {tenantId, timezone}
      );
      return {applied, created: Boolean(row?.created), currentTimezone: row?.timezone};
    });
    if (created)
      console.log(
        `tenant ${tenantId} registered (timezone ${currentTimezone}); schema "${tenantId}": ${applied.length} migration(s) applied`
      );
    else {
      console.log(
        `tenant ${tenantId} was registered already (timezone ${currentTimezone}); schema "${tenantId}": ${applied.length ? applied.join(", ") : "up to date"}`
      );
      if (values.timezone && values.timezone !== currentTimezone) {
        console.error(
          `its timezone stays ${currentTimezone}: change it with PATCH /api/v1/admin/tenant (which recomputes its daily statistics)`
        );
        process.exitCode = 1;
      }
    }
  }
} catch (error) {
  console.error("tenant create failed:", error instanceof Error ? error.message : error);
  process.exitCode = 1;
} finally {
  await orm.close(true);
}
