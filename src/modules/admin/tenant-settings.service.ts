import {Inject, Injectable} from "@tsed/di";
import {InvalidInputError, NotFoundError} from "../../common/errors.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {isKnownToIntl} from "../stats/local-time.js";
import {TenantSettingsRepository} from "../stats/tenant-settings.repository.js";
import {WeeklyStatsCache} from "../stats/weekly-stats.cache.js";
import type {TenantSettings} from "./admin.models.js";

@Injectable()
export class TenantSettingsService {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private settings!: TenantSettingsRepository;

  @Inject()
  private cache!: WeeklyStatsCache;

  async get(): Promise<TenantSettings> {
    const tenant = await this.settings.find(this.tenant.tenantId);
    if (!tenant) throw new NotFoundError("Tenant", this.tenant.tenantId);
    return {id: tenant.id, timezone: tenant.timezone, createdAt: tenant.createdAt};
  }

  /**
   * A zone both the runtime (ICU) and Postgres (tzdata) know by exactly this name, since local
   * days are computed in both. Cached weekly summaries of the tenant are dropped: their days moved.
   */
  async setTimezone(timezone: string): Promise<TenantSettings> {
    if (!isKnownToIntl(timezone) || !(await this.settings.isKnownToPostgres(timezone))) {
      throw new InvalidInputError(`"${timezone}" is not an IANA timezone name (e.g. "Europe/Berlin", "UTC")`, [{field: "timezone"}]);
    }
    const tenantId = this.tenant.tenantId;
    const before = await this.get();
    if (before.timezone === timezone) return before;
    const tenant = await this.settings.setTimezone(tenantId, timezone);
    if (!tenant) throw new NotFoundError("Tenant", tenantId);
    await this.cache.invalidateTenant(tenantId);
    return {id: tenant.id, timezone: tenant.timezone, createdAt: tenant.createdAt};
  }
}
