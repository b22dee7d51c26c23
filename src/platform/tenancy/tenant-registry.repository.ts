import {LockMode} from "@mikro-orm/core";
import type {MikroORM} from "@mikro-orm/postgresql";
import {Injectable} from "@tsed/common";
import {Orm} from "@tsed/mikro-orm";
import {queryRows} from "../db/sql.js";
import {Tenant} from "./tenant.entity.js";

/** A tenant's raw retention as stored (see RawRetentionState in src/common/raw-retention.ts). */
export interface StoredRawRetention {
  days: number | null;
  effectiveAt: Date | null;
  daysBefore: number | null;
}

/** The settings a tenant's admin can change (`PATCH /api/v1/admin/tenant`); an absent field is left as it is. */
export interface TenantSettingsChange {
  timezone?: string;
  /** The new raw retention, decided from the stored one under the row's lock (so two changes never decide on the same state). */
  rawRetention?: (current: StoredRawRetention) => StoredRawRetention;
}

/** A registered tenant as the fan-outs (nightly jobs) read it. */
export type TenantListing = Pick<Tenant, "id" | "timezone" | "rawRetentionDays" | "rawRetentionEffectiveAt" | "rawRetentionDaysBefore">;

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

  /**
   * What the request paths read of a tenant (TenantSettingsCache), or null when it is not
   * registered: plain data by one prepared statement (the same text for every tenant), since a
   * fleet spread over many tenants re-reads it at every expiry of the cache.
   */
  async settingsOf(tenantId: string): Promise<{timezone: string; rawRetentionDays: number | null} | null> {
    const [row] = await queryRows<{timezone: string; rawRetentionDays: number | null}>(
      this.orm.em.fork(),
      `select t."timezone", t."raw_retention_days" as "rawRetentionDays" from "public"."tenants" t where t."id" = :tenantId`,
      {tenantId},
      {prepare: true}
    );
    return row ?? null;
  }

  async timezoneOf(tenantId: string): Promise<string> {
    return (await this.find(tenantId))?.timezone ?? "UTC";
  }

  /** Changes the given settings in one transaction, the row locked; the tenant as it is then, or null when it is not registered. */
  async update(tenantId: string, change: TenantSettingsChange): Promise<Tenant | null> {
    return this.orm.em.fork().transactional(async (em) => {
      const tenant = await em.findOne(Tenant, {id: tenantId}, {lockMode: LockMode.PESSIMISTIC_WRITE});
      if (!tenant) return null;
      if (change.timezone !== undefined) tenant.timezone = change.timezone;
      if (change.rawRetention) {
        const next = change.rawRetention({
          days: tenant.rawRetentionDays ?? null,
          effectiveAt: tenant.rawRetentionEffectiveAt ?? null,
          daysBefore: tenant.rawRetentionDaysBefore ?? null
        });
        tenant.rawRetentionDays = next.days;
        tenant.rawRetentionEffectiveAt = next.effectiveAt;
        tenant.rawRetentionDaysBefore = next.daysBefore;
      }
      return tenant;
    });
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

  /**
   * Every registered tenant in id order, a page (at most `pageSize`) at a time: what a job that
   * walks all tenants iterates (`for await (const page of registry.pages(n))`), never loading them all.
   */
  async *pages(pageSize: number): AsyncGenerator<TenantListing[]> {
    for (let after = ""; ;) {
      const page = await this.listPage(after, pageSize);
      if (page.length > 0) yield page;
      if (page.length < pageSize) return;
      after = page.at(-1)!.id;
    }
  }

  /** Registered tenants in id order, one page at a time (keyset), so a fan-out never loads them all. */
  listPage(afterId: string, limit: number): Promise<TenantListing[]> {
    return queryRows(
      this.orm.em.fork(),
      `select "id", "timezone", "raw_retention_days" as "rawRetentionDays", "raw_retention_effective_at" as "rawRetentionEffectiveAt",
              "raw_retention_days_before" as "rawRetentionDaysBefore"
         from "public"."tenants" where "id" > :afterId order by "id" limit :limit`,
      {afterId, limit}
    );
  }
}
