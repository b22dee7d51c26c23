import {constant, Inject, Injectable} from "@tsed/di";
import {Logger} from "@tsed/logger";
import {Orm} from "@tsed/mikro-orm";
import type {MikroORM} from "@mikro-orm/postgresql";
import type {Env} from "../../config/env.js";
import {queryRows} from "../db/sql.js";
import {withAdvisoryLock} from "./advisory-lock.js";
import {assertTenantId, quoteTenantSchema} from "./tenant-id.js";
import {LATEST_TENANT_MIGRATION, migrateTenantSchema} from "./tenant-migrator.js";

/**
 * Makes sure a tenant's schema exists, is migrated and is registered, once per process and
 * tenant. Provisioning runs under a Postgres advisory lock keyed by the tenant, so concurrent
 * first requests (in this process or in other instances) wait for one another instead of racing.
 */
@Injectable()
export class TenantProvisioner {
  @Orm()
  private orm!: MikroORM;

  @Inject()
  private logger!: Logger;

  private readonly ready = new Map<string, Promise<void>>();

  ensure(tenantId: string): Promise<void> {
    let pending = this.ready.get(tenantId);
    if (!pending) {
      pending = this.provision(assertTenantId(tenantId)).catch((error) => {
        this.ready.delete(tenantId);
        throw error;
      });
      this.ready.set(tenantId, pending);
    }
    return pending;
  }

  /** Brings every registered tenant up to date (server start and `npm run migrate`). */
  async migrateAll(): Promise<{tenantId: string; applied: string[]}[]> {
    const em = this.orm.em.fork();
    const rows = await em.getConnection().execute<{id: string}[]>(`select "id" from "public"."tenants" order by "id"`);
    const results = [];
    for (const {id} of rows) {
      results.push({tenantId: id, applied: await this.withTenantLock(id, () => this.migrate(id))});
      this.ready.set(id, Promise.resolve());
    }
    return results;
  }

  private async provision(tenantId: string): Promise<void> {
    if (await this.isUpToDate(tenantId)) return;
    await this.withTenantLock(tenantId, async () => {
      // Another instance may have finished while we waited for the lock; migrating again is a no-op.
      const applied = await this.migrate(tenantId);
      await queryRows(this.orm.em.fork(), `insert into "public"."tenants" ("id") values (?) on conflict ("id") do nothing`, [tenantId]);
      if (applied.length) this.logger.info({event: "TENANT_PROVISIONED", tenantId, applied});
    });
  }

  private migrate(tenantId: string) {
    return migrateTenantSchema(constant<Env>("env")!, tenantId);
  }

  /** Registered, and the schema's migration table lists the newest tenant migration. */
  private async isUpToDate(tenantId: string): Promise<boolean> {
    const [row] = await queryRows<{upToDate: boolean}>(
      this.orm.em.fork(),
      `select exists (select 1 from "public"."tenants" where "id" = ?)
          and to_regclass(format('%I.mikro_orm_migrations', ?::text)) is not null as "upToDate"`,
      [tenantId, tenantId]
    );
    if (!row?.upToDate) return false;
    const [latest] = await queryRows<{found: boolean}>(
      this.orm.em.fork(),
      `select exists (select 1 from ${quoteTenantSchema(tenantId)}."mikro_orm_migrations" where "name" = ?) as "found"`,
      [LATEST_TENANT_MIGRATION]
    );
    return Boolean(latest?.found);
  }

  private withTenantLock<T>(tenantId: string, task: () => Promise<T>): Promise<T> {
    return withAdvisoryLock(this.orm, `smart-thermo:tenant:${tenantId}`, task);
  }
}
