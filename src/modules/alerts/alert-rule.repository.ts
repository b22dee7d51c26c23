import {Inject, Injectable} from "@tsed/common";
import {queryRows} from "../../platform/db/sql.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {AlertRule} from "./alert-rule.entity.js";
import type {AlertRuleSettings} from "./alert.models.js";

@Injectable()
export class AlertRuleRepository {
  @Inject()
  private tenant!: TenantContext;

  /** The rule, unless archived (an archived rule is gone for the API). */
  findById(id: string) {
    return this.tenant.em.findOne(AlertRule, {id, archivedAt: null});
  }

  /** One page of the device's rules that are not archived, oldest first, and how many it has. */
  listForDevice(deviceId: string, page: number, pageSize: number) {
    return this.tenant.em.findAndCount(
      AlertRule,
      {deviceId, archivedAt: null},
      {orderBy: {createdAt: "asc", id: "asc"}, limit: pageSize, offset: (page - 1) * pageSize}
    );
  }

  /**
   * How many rules the device has (archived ones do not count), with the device row locked until the transaction ends: two
   * requests adding a rule to the same device count one after the other, not both below the cap.
   * Two statements: a statement that waited for the lock would still count as of its start.
   */
  async countLockingDevice(deviceId: string): Promise<number> {
    const schema = quoteTenantSchema(this.tenant.tenantId);
    await queryRows(this.tenant.em, `select 1 from ${schema}."devices" d where d."id" = :deviceId for update`, {deviceId});
    return this.tenant.em.count(AlertRule, {deviceId, archivedAt: null});
  }

  async insert(data: AlertRuleSettings & Pick<AlertRule, "deviceId">): Promise<AlertRule> {
    const em = this.tenant.em;
    const rule = em.create(AlertRule, data);
    await em.persistAndFlush(rule);
    return rule;
  }

  async save(rule: AlertRule): Promise<AlertRule> {
    await this.tenant.em.persistAndFlush(rule);
    return rule;
  }
}
