import {Inject, Injectable} from "@tsed/common";
import {Transactional} from "@tsed/mikro-orm";
import {ConflictError, InvalidInputError, NotFoundError} from "../../common/errors.js";
import {DeviceService} from "../devices/device.service.js";
import {AlertEvents} from "./alert-events.js";
import {type AlertRule, AlertRuleKind, AlertSeverity} from "./alert-rule.entity.js";
import {AlertRuleRepository} from "./alert-rule.repository.js";
import {ALERT_RULE_UPDATABLE, type AlertRuleSettings} from "./alert.models.js";
import {AlertRepository} from "./alert.repository.js";

/** The fields a client sets (absent ones take their defaults). */
export type NewAlertRule = Partial<AlertRuleSettings>;

/** Fields whose change makes the rule judge readings differently: its open episode ends and evaluation starts afresh. */
const RESTARTING_FIELDS = [
  "condition",
  "forSeconds",
  "clearDeltaCelsius",
  "silenceSeconds"
] as const satisfies readonly (keyof AlertRule)[];

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

  @Inject()
  private events!: AlertEvents;

  /** Rules attach to active devices only (an inactive one takes no readings), at most MAX_RULES_PER_DEVICE each (409). */
  @Transactional()
  async create(deviceId: string, input: NewAlertRule): Promise<AlertRule> {
    await this.devices.getActive(deviceId);
    if ((await this.rules.countLockingDevice(deviceId)) >= MAX_RULES_PER_DEVICE) {
      throw new ConflictError(`The device has ${MAX_RULES_PER_DEVICE} alert rules already, the most it may have: change or delete one`);
    }
    const kind = input.kind ?? AlertRuleKind.THRESHOLD;
    const rule = {
      deviceId,
      kind,
      condition: input.condition ?? null,
      thresholdCelsius: input.thresholdCelsius ?? null,
      forSeconds: input.forSeconds ?? 0,
      clearDeltaCelsius: input.clearDeltaCelsius ?? 0,
      severity: input.severity ?? AlertSeverity.WARNING,
      silenceSeconds: input.silenceSeconds ?? null,
      remindEverySeconds: input.remindEverySeconds ?? null,
      isEnabled: input.isEnabled ?? true
    };
    assertKindFields(rule);
    return this.rules.insert(rule);
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
   * Changes only the fields sent (`kind` cannot change: 400). Disabling a rule or changing how it
   * judges readings (condition, forSeconds, clearDeltaCelsius, silenceSeconds) ends its open
   * episode (resolvedAt = now): a disabled rule is not evaluated any more, so nothing else would
   * ever close it, and an `above` episode cannot go on as a `below` one. Enabling it or changing
   * those fields starts its evaluation afresh (`evaluatedFrom` = now): readings recorded before are
   * not judged by a rule that was not in force then. A new threshold keeps the episode; the next
   * reading is judged against the new threshold (a late reading re-derived later is judged against
   * it too). Severity and reminders apply to what comes next.
   */
  @Transactional({retry: true})
  async update(ruleId: string, changes: AlertRuleChanges & {kind?: unknown}): Promise<AlertRule> {
    const rule = await this.get(ruleId);
    if (changes.kind !== undefined && changes.kind !== rule.kind) {
      throw new InvalidInputError("A rule's kind cannot change: delete it and add a rule of the other kind", [{path: "kind"}]);
    }
    const before = {...rule};
    for (const key of ALERT_RULE_UPDATABLE) {
      if (changes[key] !== undefined) Object.assign(rule, {[key]: changes[key]});
    }
    assertKindFields(rule);
    await this.rules.save(rule);
    const restarts = rule.isEnabled && (!before.isEnabled || RESTARTING_FIELDS.some((key) => rule[key] !== before[key]));
    if (restarts || (before.isEnabled && !rule.isEnabled)) await this.endEpisodes(rule, new Date(), restarts);
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
    await this.endEpisodes(rule, now, false);
  }

  /** Resolves the rule's open episode at `at` (announced as alert.resolved); restarts its evaluation there when asked. */
  private async endEpisodes(rule: AlertRule, at: Date, restart: boolean): Promise<void> {
    const {evaluatedFrom, resolved} = await this.alerts.endEpisodes(rule.id, at, restart);
    rule.evaluatedFrom = evaluatedFrom;
    await this.events.announce(resolved.map((alert) => ({type: "alert.resolved", alert})));
  }
}

/**
 * The fields each kind has (the CHECK alert_rules_kind_fields holds the same): a threshold rule a
 * condition and a threshold and no silenceSeconds; a no_data rule silenceSeconds and none of the
 * threshold fields. A 400 names every field out of place.
 */
export function assertKindFields(rule: NewAlertRule & {kind: AlertRuleKind}): void {
  const errors: {path: string; message: string}[] = [];
  if (rule.kind === AlertRuleKind.NO_DATA) {
    for (const path of ["condition", "thresholdCelsius"] as const)
      if (rule[path] !== null && rule[path] !== undefined) errors.push({path, message: "not allowed on a no_data rule"});
    if (rule.forSeconds) errors.push({path: "forSeconds", message: "not allowed on a no_data rule"});
    if (rule.clearDeltaCelsius) errors.push({path: "clearDeltaCelsius", message: "not allowed on a no_data rule"});
    if (rule.silenceSeconds === null || rule.silenceSeconds === undefined)
      errors.push({path: "silenceSeconds", message: "required on a no_data rule"});
  } else {
    for (const path of ["condition", "thresholdCelsius"] as const)
      if (rule[path] === null || rule[path] === undefined) errors.push({path, message: "required on a threshold rule"});
    if (rule.silenceSeconds !== null && rule.silenceSeconds !== undefined)
      errors.push({path: "silenceSeconds", message: "only no_data rules have it"});
  }
  if (errors.length)
    throw new InvalidInputError(`Invalid ${rule.kind} rule: ${errors.map((e) => `${e.path} ${e.message}`).join("; ")}`, errors);
}
