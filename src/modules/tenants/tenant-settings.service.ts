import {Inject, Injectable} from "@tsed/di";
import {InvalidInputError, NotFoundError} from "../../common/errors.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {TenantRegistry} from "../../platform/tenancy/tenant-registry.repository.js";
import {AggregationService} from "../stats/aggregation.service.js";
import {isKnownToIntl} from "../stats/local-time.js";
import type {TenantSettings} from "./tenant-settings.models.js";

/** The caller's tenant's settings (the registry row in `public.tenants`). */
@Injectable()
export class TenantSettingsService {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private tenants!: TenantRegistry;

  @Inject()
  private aggregations!: AggregationService;

  async get(): Promise<TenantSettings> {
    const tenant = await this.tenants.find(this.tenant.tenantId);
    if (!tenant) throw new NotFoundError("Tenant", this.tenant.tenantId);
    return {id: tenant.id, timezone: tenant.timezone, createdAt: tenant.createdAt};
  }

  /**
   * A zone both the runtime (ICU) and Postgres (tzdata) know by exactly this name, since local
   * days are computed in both. The tenant's local days move with it: every day of DailyStats is
   * recomputed by a job, whose id the answer gives (`statsRecomputeJobId`).
   */
  async setTimezone(timezone: string): Promise<TenantSettings> {
    if (!isKnownToIntl(timezone) || !(await this.tenants.isKnownToPostgres(timezone))) {
      throw new InvalidInputError(`"${timezone}" is not an IANA timezone name (e.g. "Europe/Berlin", "UTC")`, [{field: "timezone"}]);
    }
    const tenantId = this.tenant.tenantId;
    const before = await this.get();
    if (before.timezone === timezone) return before;
    const {result: tenant, jobId} = await this.aggregations.changeTimezone(tenantId, () => this.tenants.setTimezone(tenantId, timezone));
    if (!tenant) throw new NotFoundError("Tenant", tenantId);
    return {id: tenant.id, timezone: tenant.timezone, createdAt: tenant.createdAt, statsRecomputeJobId: jobId};
  }
}
