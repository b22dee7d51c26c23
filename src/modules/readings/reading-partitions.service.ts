import type {MikroORM} from "@mikro-orm/postgresql";
import {Inject, Injectable, Logger} from "@tsed/common";
import {Orm} from "@tsed/mikro-orm";
import {dropRetentionDays, keptSince} from "../../common/raw-retention.js";
import {tryWithSessionLock, withDedicatedConnection} from "../../platform/db/dedicated-connection.js";
import {addMonths, MonthlyPartitions, monthStart} from "../../platform/db/monthly-partitions.js";
import {assertTenantId} from "../../platform/tenancy/tenant-id.js";
import {tenantLock} from "../../platform/tenancy/tenant-migrator.js";
import {TenantRegistry, type TenantListing} from "../../platform/tenancy/tenant-registry.repository.js";

/** Months after the current one that always have a partition (so at least the next two whole months do, between runs). */
export const PARTITION_MONTHS_AHEAD = 3;
const TENANTS_PAGE = 500;

export interface TenantPartitionsOutcome {
  tenantId: string;
  /** `busy`: another session holds the tenant's lock (a migration, another run); `unpartitioned`: its conversion migration has not run. */
  status: "done" | "busy" | "unpartitioned";
  created: string[];
  dropped: string[];
}

export interface PartitionsRunResult {
  tenants: number;
  created: number;
  dropped: number;
  skipped: number;
  failed: number;
}

/**
 * The partitions of `temperature_readings` over time, per tenant: months are created ahead, and
 * whole months past the tenant's raw retention are detached and dropped (never a row-by-row
 * DELETE; DailyStats, in their own database, are untouched). Runs nightly for every tenant
 * (`maintainAll`, the scheduled job), under the tenant's advisory lock — the one its migrations
 * take — so it never races a migration or another run; each step is idempotent.
 */
@Injectable()
export class ReadingPartitionsService {
  @Orm()
  private orm!: MikroORM;

  @Inject()
  private tenants!: TenantRegistry;

  @Inject()
  private logger!: Logger;

  /** Every registered tenant, a page at a time. One tenant's failure does not stop the others; the run fails at the end (and is retried). */
  async maintainAll(now = new Date(), onProgress?: (done: number) => Promise<void>): Promise<PartitionsRunResult> {
    const result: PartitionsRunResult = {tenants: 0, created: 0, dropped: 0, skipped: 0, failed: 0};
    const failures: string[] = [];
    for await (const page of this.tenants.pages(TENANTS_PAGE)) {
      for (const tenant of page) {
        result.tenants++;
        try {
          const outcome = await this.maintain(tenant.id, dropRetentionDaysOf(tenant, now), now);
          result.created += outcome.created.length;
          result.dropped += outcome.dropped.length;
          if (outcome.status !== "done") result.skipped++;
        } catch (error) {
          result.failed++;
          failures.push(tenant.id);
          this.logger.warn({event: "READINGS_PARTITIONS_FAILED", tenantId: tenant.id, error_message: (error as Error).message});
        }
      }
      await onProgress?.(result.tenants);
    }
    this.logger.info({event: "READINGS_PARTITIONS_MAINTAINED", ...result});
    if (failures.length)
      throw new Error(`partition maintenance failed for ${failures.length} tenant(s): ${failures.slice(0, 20).join(", ")}`);
    return result;
  }

  /** One registered tenant, by its stored retention (a shortening in its grace drops by the one before). */
  async maintainRegistered(tenantId: string, now = new Date()): Promise<TenantPartitionsOutcome> {
    const tenant = await this.tenants.find(tenantId);
    return this.maintain(tenantId, tenant ? dropRetentionDaysOf(tenant, now) : null, now);
  }

  /**
   * One tenant: partitions up to PARTITION_MONTHS_AHEAD months after `now`'s, and, with a raw
   * retention, every partition that ends at or before `now - rawRetentionDays` dropped.
   * @param rawRetentionDays the retention the drop goes by now (dropRetentionDays), not necessarily the setting
   */
  async maintain(tenantId: string, rawRetentionDays: number | null, now = new Date()): Promise<TenantPartitionsOutcome> {
    const schema = assertTenantId(tenantId);
    const started = Date.now();
    const run = await withDedicatedConnection(this.orm, (db) =>
      tryWithSessionLock(db, tenantLock(schema), async (): Promise<TenantPartitionsOutcome> => {
        const partitions = new MonthlyPartitions(db, schema, "temperature_readings");
        if (!(await partitions.isPartitioned())) return {tenantId, status: "unpartitioned", created: [], dropped: []};
        const created = await partitions.ensureUntil(addMonths(monthStart(now), PARTITION_MONTHS_AHEAD + 1), now);
        const cutoff = keptSince(rawRetentionDays, now);
        const dropped = cutoff ? await partitions.dropEndingBy(cutoff) : [];
        return {tenantId, status: "done", created, dropped};
      })
    );
    const outcome = run.ran ? run.result : {tenantId, status: "busy" as const, created: [], dropped: []};
    if (outcome.status !== "done" || outcome.created.length || outcome.dropped.length) {
      this.logger.info({event: "READINGS_PARTITIONS", ...outcome, rawRetentionDays, durationMs: Date.now() - started});
    }
    return outcome;
  }
}

function dropRetentionDaysOf(
  tenant: Pick<TenantListing, "rawRetentionDays" | "rawRetentionEffectiveAt" | "rawRetentionDaysBefore">,
  now: Date
): number | null {
  return dropRetentionDays(
    {
      days: tenant.rawRetentionDays ?? null,
      effectiveAt: tenant.rawRetentionEffectiveAt ?? null,
      daysBefore: tenant.rawRetentionDaysBefore ?? null
    },
    now
  );
}
