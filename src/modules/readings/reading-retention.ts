import {Inject, Injectable} from "@tsed/common";
import {InvalidInputError} from "../../common/errors.js";
import {keptSince} from "../../common/raw-retention.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {TenantSettingsCache} from "../../platform/tenancy/tenant-settings.cache.js";
import type {ReadingInput} from "./reading.models.js";

/**
 * Readings older than the tenant's raw retention are refused (400), like readings from the
 * future: their month is dropped, or about to be, so storing them would only lose them again —
 * and the nightly drop must be able to rely on no new rows arriving in expired months. The
 * setting comes from TenantSettingsCache: no query on the ingest path.
 */
@Injectable()
export class ReadingRetentionRule {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private settings!: TenantSettingsCache;

  /** Throws InvalidInputError naming every offending item (`/readings/3/recordedAt`), like the schema validation does. */
  async assertKept(inputs: readonly ReadingInput[], pathOf: (index: number) => string): Promise<void> {
    const since = keptSince((await this.settings.get(this.tenant.tenantId)).rawRetentionDays);
    if (since === null) return;
    const sinceMs = since.getTime();
    const errors: Record<string, unknown>[] = [];
    inputs.forEach((input, index) => {
      if (input.recordedAt.getTime() >= sinceMs) return;
      errors.push({
        instancePath: `${pathOf(index)}/recordedAt`,
        keyword: "rawRetention",
        message: "must not be older than the tenant's raw retention",
        params: {keptSince: since.toISOString()}
      });
    });
    if (errors.length)
      throw new InvalidInputError(
        `recordedAt must not be before ${since.toISOString()}: the tenant keeps raw readings for a limited time (rawRetentionDays)`,
        errors
      );
  }
}
