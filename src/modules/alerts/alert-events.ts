import {Inject, Injectable} from "@tsed/common";
import {queryRows} from "../../platform/db/sql.js";
import {appendEvents} from "../../platform/outbox/outbox.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {assertTenantId, quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import type {EntityManager} from "@mikro-orm/postgresql";
import type {StoredAlert} from "./alert.repository.js";

export type AlertEventType = "alert.fired" | "alert.resolved" | "alert.acknowledged" | "alert.retracted" | "alert.reminder";

/** One change of an alert to announce, with the alert as it now stands. */
export interface AlertChange {
  type: AlertEventType;
  alert: StoredAlert;
  /** Fields added to the event's `data` (e.g. `afterSilence`). */
  extra?: Record<string, unknown>;
}

/** The rule and the device an event names, as the event body shows them. */
const CONTEXT_SQL = (schema: string) => `select r."id", json_build_object(
         'id', r."id", 'kind', r."kind", 'condition', r."condition", 'thresholdCelsius', r."threshold_celsius",
         'forSeconds', r."for_seconds", 'clearDeltaCelsius', r."clear_delta_celsius", 'severity', r."severity",
         'silenceSeconds', r."silence_seconds", 'remindEverySeconds', r."remind_every_seconds", 'isEnabled', r."is_enabled") as "rule",
       json_build_object('id', d."id", 'serialNumber', d."serial_number", 'name', d."name", 'location', d."location") as "device"
  from ${schema}."alert_rules" r join ${schema}."devices" d on d."id" = r."device_id"
 where r."id" = any(:ruleIds::uuid[])`;

/**
 * Announces alert changes as events (`alert.fired`, …) in the transaction that makes them, through
 * the outbox (platform/outbox): an event exists exactly when its change commits, and the
 * notifications feature delivers it to webhooks and the live stream. The body's `data` is
 * `{alert, rule, device}`, the alert as the API shows it, with its `version`.
 */
@Injectable()
export class AlertEvents {
  @Inject()
  private tenant!: TenantContext;

  /** In the current request's (or transaction's) entity manager. */
  announce(changes: readonly AlertChange[]): Promise<void> {
    return announceAlertChanges(this.tenant.em, changes);
  }
}

/** AlertEvents.announce for work outside a request (the no_data sweep): `em` is bound to the tenant's schema. */
export async function announceAlertChanges(em: EntityManager, changes: readonly AlertChange[]): Promise<void> {
  if (changes.length === 0) return;
  const ruleIds = [...new Set(changes.map((c) => c.alert.ruleId))];
  const rows = await queryRows<{id: string; rule: unknown; device: unknown}>(
    em,
    CONTEXT_SQL(quoteTenantSchema(assertTenantId(em.schema))),
    {
      ruleIds
    }
  );
  const context = new Map(rows.map((row) => [row.id, row]));
  await appendEvents(
    em,
    changes.map(({type, alert, extra}) => {
      const {rule, device} = context.get(alert.ruleId)!;
      return {type, data: {alert, rule, device, ...extra}};
    })
  );
}
