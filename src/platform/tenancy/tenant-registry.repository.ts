import type {MikroORM} from "@mikro-orm/postgresql";
import {Injectable} from "@tsed/common";
import {Orm} from "@tsed/mikro-orm";
import {queryRows} from "../db/sql.js";
import {Tenant} from "./tenant.entity.js";

/** The settings a tenant's admin can change (`PATCH /api/v1/admin/tenant`); an absent field is left as it is. */
export interface TenantSettingsChange {
  timezone?: string;
  /** null: keep raw readings forever. */
  rawRetentionDays?: number | null;
}

/**
 * The tenant registry (`public.tenants`): which tenants exist and their settings, read by
 * requests, the after-commit hook and the jobs alike. The hook and jobs run without a
 * tenant-bound request context, so this works on an explicit fork of the default ORM; the
 * registry is platform metadata, never in a tenant schema.
 */
@Injectable()
export class TenantRegistry {
  @Orm()
  private orm!: MikroORM;

  find(tenantId: string): Promise<Tenant | null> {
    return this.orm.em.fork().findOne(Tenant, {id: tenantId});
  }

  async timezoneOf(tenantId: string): Promise<string> {
    return (await this.find(tenantId))?.timezone ?? "UTC";
  }

  /** Changes the given settings in one statement; the tenant as it is then, or null when it is not registered. */
  async update(tenantId: string, change: TenantSettingsChange): Promise<Tenant | null> {
    const em = this.orm.em.fork();
    const values = Object.fromEntries(Object.entries(change).filter(([, value]) => value !== undefined));
    if (Object.keys(values).length) await em.nativeUpdate(Tenant, {id: tenantId}, values);
    return em.findOne(Tenant, {id: tenantId});
  }

  /** Postgres must know the zone too: every local day is computed in SQL with it. */
  async isKnownToPostgres(timezone: string): Promise<boolean> {
    const [row] = await queryRows<{known: boolean}>(
      this.orm.em.fork(),
      `select exists (select 1 from pg_timezone_names where name = :timezone) as "known"`,
      {timezone}
    );
    return Boolean(row?.known);
  }

  /** Registered tenants in id order, one page at a time (keyset), so a fan-out never loads them all. */
  listPage(afterId: string, limit: number): Promise<Pick<Tenant, "id" | "timezone" | "rawRetentionDays">[]> {
    return queryRows(
      this.orm.em.fork(),
      `select "id", "timezone", "raw_retention_days" as "rawRetentionDays" from "public"."tenants" where "id" > :afterId order by "id" limit :limit`,
      {afterId, limit}
    );
  }
}
