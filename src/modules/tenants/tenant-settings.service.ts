import {Inject, Injectable} from "@tsed/common";
import {InvalidInputError, NotFoundError} from "../../common/errors.js";
import {changeRawRetention, pendingEffectiveAt} from "../../common/raw-retention.js";
import {AppConfig} from "../../config/app-config.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import type {TenantSettingsChange} from "../../platform/tenancy/tenant-registry.repository.js";
import {TenantRegistry} from "../../platform/tenancy/tenant-registry.repository.js";
import {TenantSettingsCache} from "../../platform/tenancy/tenant-settings.cache.js";
import type {Tenant} from "../../platform/tenancy/tenant.entity.js";
import {DailyStatsRecomputeJobsService} from "../stats/daily-stats-recompute-jobs.service.js";
import {isKnownToIntl} from "../../common/local-time.js";
import type {TenantSettings, TenantSettingsPatch} from "./tenant-settings.models.js";

/** The caller's tenant's settings (the registry row in `public.tenants`). */
@Injectable()
export class TenantSettingsService {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private tenants!: TenantRegistry;

  @Inject()
  private settingsCache!: TenantSettingsCache;

  @Inject()
  private aggregations!: DailyStatsRecomputeJobsService;

  @Inject()
  private config!: AppConfig;

  async get(): Promise<TenantSettings> {
    const tenant = await this.tenants.find(this.tenant.tenantId);
    if (!tenant) throw new NotFoundError("Tenant", this.tenant.tenantId);
    return toSettings(tenant);
  }

  /**
   * Changes the settings given (validated by the model), nothing else. A new timezone moves the
   * tenant's local days: every day of DailyStats is recomputed by a job, whose id the answer gives
   * (`statsRecomputeJobId`; see DailyStatsRecomputeJobsService.changeTimezone for how the change and the job
   * are ordered). A shorter raw retention refuses older readings at once, but its months are
   * dropped only after RETENTION_GRACE_DAYS (`rawRetentionEffectiveAt`); see changeRawRetention.
   */
  async update(patch: TenantSettingsPatch): Promise<TenantSettings> {
    const tenantId = this.tenant.tenantId;
    const before = await this.get();
    const change: TenantSettingsChange = {};
    if (patch.timezone !== undefined && patch.timezone !== before.timezone) change.timezone = await this.validTimezone(patch.timezone);
    const days = patch.rawRetentionDays;
    if (days !== undefined) change.rawRetention = (current) => changeRawRetention(current, days, new Date(), this.config.retentionGraceMs);
    const apply = () => this.tenants.update(tenantId, change);
    let tenant: Tenant | null;
    let statsRecomputeJobId: string | undefined;
    if (change.timezone === undefined) tenant = await apply();
    else ({result: tenant, jobId: statsRecomputeJobId} = await this.aggregations.changeTimezone(tenantId, apply));
    if (!tenant) throw new NotFoundError("Tenant", tenantId);
    this.settingsCache.invalidate(tenantId);
    return {...toSettings(tenant), ...(statsRecomputeJobId ? {statsRecomputeJobId} : {})};
  }

  /** A zone both the runtime (ICU) and Postgres (tzdata) know by exactly this name, since local days are computed in both. */
  private async validTimezone(timezone: string): Promise<string> {
    if (!isKnownToIntl(timezone) || !(await this.tenants.isKnownToPostgres(timezone))) {
      throw new InvalidInputError(`"${timezone}" is not an IANA timezone name (e.g. "Europe/Berlin", "UTC")`, [{field: "timezone"}]);
    }
    return timezone;
  }
}

function toSettings(tenant: Tenant): TenantSettings {
  const rawRetention = {
    days: tenant.rawRetentionDays ?? null,
    effectiveAt: tenant.rawRetentionEffectiveAt ?? null,
    daysBefore: tenant.rawRetentionDaysBefore ?? null
  };
  return {
    id: tenant.id,
    timezone: tenant.timezone,
    rawRetentionDays: rawRetention.days,
    rawRetentionEffectiveAt: pendingEffectiveAt(rawRetention),
    createdAt: tenant.createdAt
  };
}
