import "@tsed/platform-express";
import "@tsed/ajv";
import "@tsed/swagger";
import "@tsed/mikro-orm";
import "@tsed/passport";
import "@tsed/bullmq";
import "./platform/auth/jwt.protocol.js";
import "./platform/cache/redis.provider.js";
import "./common/error.filter.js";
import {Configuration, Inject} from "@tsed/di";
import {PlatformApplication} from "@tsed/platform-http";
import {Orm} from "@tsed/mikro-orm";
import type {MikroORM} from "@mikro-orm/postgresql";
import {Logger} from "@tsed/logger";
import {ANALYTICS_CONTEXT} from "./config/mikro-orm.config.js";
import {withAdvisoryLock} from "./platform/tenancy/advisory-lock.js";
import {TenantProvisioner} from "./platform/tenancy/tenant-provisioner.service.js";

/**
 * The application. Its settings come from tsed.config.ts (`buildConfiguration(env)`), passed to
 * `PlatformExpress.bootstrap` by src/index.ts, the worker and the tests.
 */
@Configuration({})
export class Server {
  @Orm()
  private orm!: MikroORM;

  @Orm(ANALYTICS_CONTEXT)
  private analytics!: MikroORM;

  @Inject()
  private provisioner!: TenantProvisioner;

  @Inject()
  private logger!: Logger;

  @Inject()
  private app!: PlatformApplication;

  /**
   * No `X-Powered-By: Express`: it tells attackers what to try. (Ts.ED drops it only when its own
   * `env` setting is "production"; that key holds our validated environment instead.)
   */
  $beforeRoutesInit() {
    this.app.getApp().disable("x-powered-by");
  }

  /** Starting applies migrations: the platform registry, analytics, then every known tenant. */
  async $afterInit() {
    await migrateAtStartup(this.orm, this.analytics, this.provisioner, this.logger);
  }
}

/** Several instances may start at once: they take turns (advisory lock), the later ones find nothing to do. */
export async function migrateAtStartup(orm: MikroORM, analytics: MikroORM, provisioner: TenantProvisioner, logger: Logger) {
  const {platform, analyticsApplied, tenants} = await withAdvisoryLock(orm, "smart-thermo:migrations", async () => ({
    platform: await orm.getMigrator().up(),
    analyticsApplied: await analytics.getMigrator().up(),
    tenants: await provisioner.migrateAll()
  }));
  logger.info({
    event: "MIGRATIONS_APPLIED",
    platform: platform.map((m) => m.name),
    analytics: analyticsApplied.map((m) => m.name),
    tenants: tenants.filter((t) => t.applied.length).length,
    tenantsChecked: tenants.length
  });
}
