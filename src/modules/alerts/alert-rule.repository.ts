import {Inject, Injectable} from "@tsed/di";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {AlertRule} from "./alert-rule.entity.js";

@Injectable()
export class AlertRuleRepository {
  @Inject()
  private tenant!: TenantContext;

  findById(id: string) {
    return this.tenant.em.findOne(AlertRule, {id});
  }

  listForDevice(deviceId: string) {
    return this.tenant.em.find(AlertRule, {deviceId}, {orderBy: {createdAt: "asc", id: "asc"}});
  }

  async insert(data: Pick<AlertRule, "deviceId" | "condition" | "thresholdCelsius" | "isEnabled">): Promise<AlertRule> {
    const em = this.tenant.em;
    const rule = em.create(AlertRule, data);
    await em.persistAndFlush(rule);
    return rule;
  }

  async save(rule: AlertRule): Promise<AlertRule> {
    await this.tenant.em.persistAndFlush(rule);
    return rule;
  }

  async remove(rule: AlertRule): Promise<void> {
    await this.tenant.em.removeAndFlush(rule);
  }
}
