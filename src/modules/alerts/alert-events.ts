import {Inject, Injectable} from "@tsed/common";
import {queryRows} from "../../platform/db/sql.js";
import {appendEvents} from "../../platform/outbox/outbox.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {assertTenantId, quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import type {EntityManager} from "@mikro-orm/postgresql";
import {EVENT_CONTEXT_COLUMNS, type EventContext, type StoredAlert} from "./alert.repository.js";

export type AlertEventType = "alert.fired" | "alert.resolved" | "alert.acknowledged" | "alert.retracted" | "alert.reminder";

/** One change of an alert to announce, with the alert as it now stands. */
export interface AlertChange {
  type: AlertEventType;
  alert: StoredAlert;
  /** Fields added to the event's `data` (e.g. `afterSilence`). */
  extra?: Record<string, unknown>;
}

const CONTEXT_SQL = (schema: string) => `select r."id", ${EVENT_CONTEXT_COLUMNS}
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

  /**
   * In the current request's (or transaction's) entity manager.
   * @param known the context of rules already read in this transaction (their rows locked): not read again
   */
  announce(changes: readonly AlertChange[], known: readonly EventContext[] = []): Promise<void> {
    return announceAlertChanges(this.tenant.em, changes, known);
  }
}

/** AlertEvents.announce for work outside a request (the no_data sweep): `em` is bound to the tenant's schema. */
export async function announceAlertChanges(
  em: EntityManager,
  changes: readonly AlertChange[],
  known: readonly EventContext[] = []
): Promise<void> {
  if (changes.length === 0) return;
  const context = new Map(known.map((row) => [row.id, row]));
  const ruleIds = [...new Set(changes.map((c) => c.alert.ruleId))].filter((id) => !context.has(id));
  if (ruleIds.length) {
    const rows = await queryRows<EventContext>(em, CONTEXT_SQL(quoteTenantSchema(assertTenantId(em.schema))), {ruleIds});
    for (const row of rows) context.set(row.id, row);
  }
  await appendEvents(
    em,
    changes.map(({type, alert, extra}) => {
      const {rule, device} = context.get(alert.ruleId)!;
      return {type, data: {alert, rule, device, ...extra}};
    })
  );
}
