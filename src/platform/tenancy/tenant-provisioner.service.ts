import {Inject, Injectable, Logger} from "@tsed/common";
import {Orm} from "@tsed/mikro-orm";
import type {MikroORM} from "@mikro-orm/postgresql";
import {LRUCache} from "lru-cache";
import {ForbiddenError} from "../../common/errors.js";
import {AppConfig} from "../../config/app-config.js";
import {withAdvisoryLock} from "../db/advisory-lock.js";
import {queryRows} from "../db/sql.js";
import {assertTenantId, quoteTenantSchema} from "./tenant-id.js";
import {LATEST_TENANT_MIGRATION, migrateTenantSchema, tenantLock} from "./tenant-migrator.js";

const MAX_READY = 10_000;

/**
 * Makes sure a tenant's schema exists, is migrated and is registered, once per process and
 * tenant. Provisioning runs under a Postgres advisory lock keyed by the tenant, so concurrent
 * first requests (in this process or in other instances) wait for one another instead of racing.
 * With TENANT_PROVISIONING=registered only tenants created with `npm run tenant` exist: any other
 * tenant id is refused (403) before anything is created.
 */
@Injectable()
export class TenantProvisionerService {
  @Orm()
  private orm!: MikroORM;

  @Inject()
  private config!: AppConfig;

  @Inject()
  private logger!: Logger;

  /**
   * Tenants known to be ready, the most recently used MAX_READY of them: a tenant that fell out is
   * checked again on its next request (two cheap queries), so a process serving many tenants keeps
   * a bounded set. Plain flags, not the provisioning promises: a promise made inside a request keeps
   * that request's whole async context alive as long as it is referenced (TenantSettingsCache).
   */
  private readonly ready = new LRUCache<string, true>({max: MAX_READY});
  /** Provisionings under way, shared by concurrent first requests; each is forgotten once it settles. */
  private readonly pending = new Map<string, Promise<void>>();

  ensure(tenantId: string): Promise<void> {
    if (this.ready.get(tenantId)) return Promise.resolve();
    let pending = this.pending.get(tenantId);
    if (!pending) {
      pending = this.provision(assertTenantId(tenantId)).then(
        () => {
          this.ready.set(tenantId, true);
          this.pending.delete(tenantId);
        },
        (error: unknown) => {
          this.pending.delete(tenantId);
          throw error;
        }
      );
      this.pending.set(tenantId, pending);
    }
    return pending;
  }

  /** Tenants that startup migration (migrateAll) has just brought up to date need no check. */
  markReady(tenantIds: Iterable<string>): void {
    for (const tenantId of tenantIds) this.ready.set(tenantId, true);
  }

  private async provision(tenantId: string): Promise<void> {
    if (this.config.tenantProvisioning === "registered" && !(await this.isRegistered(tenantId))) {
      throw new ForbiddenError("This tenant is not registered");
    }
    if (await this.isUpToDate(tenantId)) return;
    await withAdvisoryLock(this.orm, tenantLock(tenantId), async () => {
      // Another instance may have finished while we waited for the lock; migrating again is a no-op.
      const applied = await migrateTenantSchema(this.config, tenantId);
      await queryRows(this.orm.em.fork(), `insert into "public"."tenants" ("id") values (:tenantId) on conflict ("id") do nothing`, {
        tenantId
      });
      if (applied.length) this.logger.info({event: "TENANT_PROVISIONED", tenantId, applied});
    });
  }

  private async isRegistered(tenantId: string): Promise<boolean> {
    const [row] = await queryRows<{found: boolean}>(
      this.orm.em.fork(),
      `select exists (select 1 from "public"."tenants" where "id" = :tenantId) as "found"`,
      {tenantId}
    );
    return Boolean(row?.found);
  }

  /** Registered, and the schema's migration table lists the newest tenant migration. */
  private async isUpToDate(tenantId: string): Promise<boolean> {
    const [row] = await queryRows<{upToDate: boolean}>(
      this.orm.em.fork(),
      `select exists (select 1 from "public"."tenants" where "id" = :tenantId)
          and to_regclass(format('%I.mikro_orm_migrations', :tenantId::text)) is not null as "upToDate"`,
      {tenantId}
    );
    if (!row?.upToDate) return false;
    const [latest] = await queryRows<{found: boolean}>(
      this.orm.em.fork(),
      `select exists (select 1 from ${quoteTenantSchema(tenantId)}."mikro_orm_migrations" where "name" = :name) as "found"`,
      {name: LATEST_TENANT_MIGRATION}
    );
    return Boolean(latest?.found);
  }
}
