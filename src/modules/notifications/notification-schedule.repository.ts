import type {EntityManager} from "@mikro-orm/postgresql";
import {Injectable} from "@tsed/common";
import {queryRows} from "../../platform/db/sql.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import {STORED_ALERT, type StoredAlert} from "../alerts/alert.repository.js";

/** Whether a silence row `si` covers the alert `a`: the same device, the same rule, or the whole tenant. */
const COVERS = `((si."device_id" is null and si."rule_id" is null) or si."device_id" = a."device_id" or si."rule_id" = a."rule_id")`;
/** Open (neither resolved nor retracted) and unacknowledged: the alerts a silence's end or a reminder is about. */
const OPEN_UNACKNOWLEDGED = `a."resolved_at" is null and a."retracted_at" is null and a."acknowledged_at" is null`;

/**
 * The statements of the notifications' scheduled scan (NotificationScan): the ends of silences,
 * reminders, and the purge of old outbox events. Explicit about entity manager and tenant, like
 * WebhookRepository; indexes in Migration20261206120000_notification_schedules.
 */
@Injectable()
export class NotificationScheduleRepository {
  /**
   * Marks the tenant's silences that have ended and are not yet released as released, and returns
   * the alerts they held back that must now be sent: in the scope of one of them, still open and
   * unacknowledged, not covered by a silence in force now (that one's end will send it), and whose
   * latest `alert.fired` event (the first one, or an earlier `afterSilence` one) was held back (a
   * delivery logged `suppressed`). An alert that fired and resolved inside the silence is not open:
   * nothing is sent for it. A silence is released only once every event that occurred before its
   * end has been relayed, so the relay's decision about those events is known. Locks the silences
   * (SKIP LOCKED: two scans never release the same one).
   */
  async releaseEndedSilences(em: EntityManager, tenantId: string): Promise<StoredAlert[]> {
    const s = quoteTenantSchema(tenantId);
    const ended = await queryRows<{id: string}>(
      em,
      `update ${s}."silences" set "released_at" = now()
        where "id" in (
          select si."id" from ${s}."silences" si
           where si."released_at" is null and si."ends_at" <= now()
             and not exists (select 1 from ${s}."events" e where e."dispatched_at" is null and e."occurred_at" < si."ends_at")
           order by si."ends_at" limit 500 for update skip locked)
        returning "id"::text as "id"`,
      {}
    );
    if (!ended.length) return [];
    return queryRows<StoredAlert>(
      em,
      `select ${STORED_ALERT} from ${s}."alerts" a
        where ${OPEN_UNACKNOWLEDGED}
          and exists (select 1 from ${s}."silences" si where si."id" = any(:ids::uuid[]) and ${COVERS})
          and not exists (select 1 from ${s}."silences" si where si."starts_at" <= now() and si."ends_at" > now() and ${COVERS})
          and exists (
            select 1 from ${s}."webhook_deliveries" d
             where d."status" = 'suppressed'
               and d."event_id" = (select e."id" from ${s}."events" e
                                    where e."type" = 'alert.fired' and (e."body" #>> '{data,alert,id}') = a."id"::text
                                    order by e."seq" desc limit 1))
        order by a."fired_at", a."id"`,
      {ids: ended.map((row) => row.id)}
    );
  }

  /**
   * The tenant's open, unacknowledged alerts whose rule has `remind_every_seconds` and whose next
   * reminder is due (every remind_every_seconds after fired_at), in one statement: it moves each
   * one's `last_reminded_at` to the latest slot passed (a scan that came late sends one reminder,
   * not a burst) and says whether a silence covers it now (then no reminder is sent for this slot).
   */
  dueReminders(em: EntityManager, tenantId: string): Promise<(StoredAlert & {silenced: boolean})[]> {
    const s = quoteTenantSchema(tenantId);
    return queryRows(
      em,
      `with "due" as (
         select a."id", r."remind_every_seconds" as "every"
           from ${s}."alerts" a join ${s}."alert_rules" r on r."id" = a."rule_id"
          where ${OPEN_UNACKNOWLEDGED} and r."remind_every_seconds" is not null
            and coalesce(a."last_reminded_at", a."fired_at") + make_interval(secs => r."remind_every_seconds") <= now()
          order by a."id" limit 1000
            for update of a skip locked)
       update ${s}."alerts" as a
          set "last_reminded_at" = a."fired_at"
            + make_interval(secs => floor(extract(epoch from now() - a."fired_at") / "due"."every") * "due"."every")
         from "due" where a."id" = "due"."id"
       returning ${STORED_ALERT},
         exists (select 1 from ${s}."silences" si where si."starts_at" <= now() and si."ends_at" > now() and ${COVERS}) as "silenced"`,
      {}
    );
  }

  /**
   * Deletes dispatched events older than `before` (their deliveries and attempts go with them, by
   * the foreign keys), at most `limit`; keeps any with a delivery still pending. Returns how many.
   */
  async purgeDispatched(em: EntityManager, tenantId: string, before: Date, limit: number): Promise<number> {
    const s = quoteTenantSchema(tenantId);
    const rows = await queryRows<{n: number}>(
      em,
      `with "gone" as (
         delete from ${s}."events" where "seq" in (
           select e."seq" from ${s}."events" e
            where e."dispatched_at" < :before::timestamptz
              and not exists (select 1 from ${s}."webhook_deliveries" d where d."event_id" = e."id" and d."status" = 'pending')
            limit :limit)
         returning 1)
       select count(*)::int as "n" from "gone"`,
      {before: before.toISOString(), limit}
    );
    return rows[0]!.n;
  }
}
