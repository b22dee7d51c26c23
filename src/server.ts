import "@tsed/platform-express";
import "@tsed/ajv";
import "@tsed/swagger";
import "@tsed/mikro-orm";
import "@tsed/bullmq";
import "./platform/auth/access-token-verifier.js";
import "./platform/auth/route-scoped-passport.module.js";
import "./platform/auth/verified-token-first.middleware.js";
import "./platform/cache/redis.provider.js";
import "./platform/queue/job-scheduler.js";
import "./platform/validation/json-numbers.keyword.js";
import "./platform/validation/strict-formats.js";
import "./common/error.filter.js";
import {Configuration, Inject, Logger} from "@tsed/common";
import {Orm} from "@tsed/mikro-orm";
import type {MikroORM} from "@mikro-orm/postgresql";
import {AppConfig} from "./config/app-config.js";
import {checkConnectionRoles, CONNECTION_ROLE_SQL, type ConnectionRole, connectionRole} from "./platform/db/database-role.js";
import {ANALYTICS_CONTEXT} from "./platform/db/orm-contexts.js";
import {migrateAll} from "./platform/tenancy/tenant-migrator.js";
import {TenantProvisionerService} from "./platform/tenancy/tenant-provisioner.service.js";

/**
 * The application. Its settings come from tsed.config.ts (`buildConfiguration(config)`), passed to
 * `PlatformExpress.bootstrap` by src/index.ts, the worker, the CLIs and the tests.
 */
@Configuration({})
export class Server {
  @Orm()
  private orm!: MikroORM;

  @Orm(ANALYTICS_CONTEXT)
  private analytics!: MikroORM;

  @Inject()
  private config!: AppConfig;

  @Inject()
  private provisioner!: TenantProvisionerService;

  @Inject()
  private logger!: Logger;

  /**
   * Starting refuses a superuser connection (docs/database-role.md), then applies migrations: the
   * platform registry, analytics, then every known tenant.
   */
  async $afterInit() {
    const roles = await Promise.all([
      ...[this.orm, this.analytics].map(async (orm) => (await orm.em.getConnection().execute<ConnectionRole[]>(CONNECTION_ROLE_SQL))[0]!),
      // Exports may read elsewhere (a replica), with a role of their own.
      ...(this.config.export.databaseUrl === this.config.databaseUrl ? [] : [connectionRole(this.config.export.databaseUrl)])
    ]);
    const warning = checkConnectionRoles(roles, this.config.db.allowSuperuser);
    if (warning) this.logger.warn({event: "DB_SUPERUSER", message: warning});
    const report = await migrateAll(this.orm, this.analytics, this.config);
    this.provisioner.markReady(report.tenants.map((t) => t.tenantId));
    this.logger.info({
      event: "MIGRATIONS_APPLIED",
      platform: report.platform,
      analytics: report.analytics,
      tenants: report.tenants.filter((t) => t.applied.length).length,
      tenantsChecked: report.tenants.length
    });
  }
}
