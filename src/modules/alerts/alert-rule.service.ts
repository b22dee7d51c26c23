import {Inject, Injectable} from "@tsed/common";
import {Transactional} from "@tsed/mikro-orm";
import {ConflictError, NotFoundError} from "../../common/errors.js";
import {DeviceService} from "../devices/device.service.js";
import type {AlertRule} from "./alert-rule.entity.js";
import {AlertRuleRepository} from "./alert-rule.repository.js";
import {ALERT_RULE_UPDATABLE} from "./alert.models.js";
import {AlertRepository} from "./alert.repository.js";

export type NewAlertRule = Pick<AlertRule, "condition" | "thresholdCelsius"> & Partial<Pick<AlertRule, "isEnabled">>;

/** Rules per device: every rule is locked and evaluated on every write of the device's readings. */
export const MAX_RULES_PER_DEVICE = 20;
export type AlertRuleChanges = Partial<Pick<AlertRule, (typeof ALERT_RULE_UPDATABLE)[number]>>;

@Injectable()
export class AlertRuleService {
  @Inject()
  private devices!: DeviceService;

  @Inject()
  private rules!: AlertRuleRepository;

  @Inject()
  private alerts!: AlertRepository;

  /** Rules attach to active devices only (an inactive one takes no readings), at most MAX_RULES_PER_DEVICE each (409). */
  @Transactional()
  async create(deviceId: string, input: NewAlertRule): Promise<AlertRule> {
    await this.devices.getActive(deviceId);
    if ((await this.rules.countLockingDevice(deviceId)) >= MAX_RULES_PER_DEVICE) {
      throw new ConflictError(`The device has ${MAX_RULES_PER_DEVICE} alert rules already, the most it may have: change or delete one`);
    }
    return this.rules.insert({
      deviceId,
      condition: input.condition,
      thresholdCelsius: input.thresholdCelsius,
      isEnabled: input.isEnabled ?? true
    });
  }

  async listForDevice(deviceId: string, page: number, pageSize: number) {
    await this.devices.get(deviceId);
    const [items, total] = await this.rules.listForDevice(deviceId, page, pageSize);
    return {items, total, page, pageSize};
  }

  async get(ruleId: string): Promise<AlertRule> {
    const rule = await this.rules.findById(ruleId);
    if (!rule) throw new NotFoundError("Alert rule", ruleId);
    return rule;
  }

  /**
   * Changes only the fields sent. Disabling a rule or flipping its condition ends its open episode
   * (resolvedAt = now): a disabled rule is not evaluated any more, so nothing else would ever close
   * it, and an `above` episode cannot go on as a `below` one. Enabling it or flipping its condition
   * starts its evaluation afresh (`evaluatedFrom` = now): readings recorded before are not judged
   * by a rule that was not in force then. A new threshold keeps the episode; the next reading is
   * judged against the new threshold (a late reading re-derived later is judged against it too).
   */
  @Transactional({retry: true})
  async update(ruleId: string, changes: AlertRuleChanges): Promise<AlertRule> {
    const rule = await this.get(ruleId);
    const {isEnabled: wasEnabled, condition: oldCondition} = rule;
    for (const key of ALERT_RULE_UPDATABLE) {
      if (changes[key] !== undefined) Object.assign(rule, {[key]: changes[key]});
    }
    await this.rules.save(rule);
    const restarts = rule.isEnabled && (!wasEnabled || rule.condition !== oldCondition);
    if (restarts || (wasEnabled && !rule.isEnabled)) rule.evaluatedFrom = await this.alerts.endEpisodes(rule.id, new Date(), restarts);
    return rule;
  }

  /**
   * Archives the rule (`DELETE`): its alert history stays (an alert of the past must not vanish
   * because a rule changed), its open episode resolves now, as for a disabled rule, and it is
   * disabled for good (archived rules are never enabled: a constraint holds it, and the
   * statements that evaluate rules read enabled ones only). From then on it is a 404 for the API
   * and no longer counts towards the device's MAX_RULES_PER_DEVICE.
   */
  @Transactional({retry: true})
  async remove(ruleId: string): Promise<void> {
    const rule = await this.get(ruleId);
    const now = new Date();
    rule.isEnabled = false;
    rule.archivedAt = now;
    await this.rules.save(rule);
    rule.evaluatedFrom = await this.alerts.endEpisodes(rule.id, now, false);
  }
}
