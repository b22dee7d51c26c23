import type {EntityManager, MikroORM} from "@mikro-orm/postgresql";
import {Inject, Injectable, Logger} from "@tsed/common";
import {Orm} from "@tsed/mikro-orm";
import {queryRows} from "../../platform/db/sql.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import {TenantRegistry} from "../../platform/tenancy/tenant-registry.repository.js";
import {type AlertChange, announceAlertChanges} from "./alert-events.js";
import {AlertRuleKind} from "./alert-rule.entity.js";
import {STORED_ALERT, type StoredAlert} from "./alert.repository.js";

const TENANTS_PAGE = 500;
const NO_DATA = `'${AlertRuleKind.NO_DATA}'`;

/** When a no_data rule's device went silent: its last arrival, or when the rule began watching (`r` a rule, `d` its device). */
const silentSince = (r: string, d: string) => `greatest(${d}."last_arrival_at", coalesce(${r}."evaluated_from", ${r}."created_at"))`;

/** Resolves (now) the open no_data episodes of deactivated devices: a deactivated device is not expected to send anything. */
export const endInactiveSilencesSql = (s: string) => `with "ended" as (
     update ${s}."alerts" a set "resolved_at" = now(), "updated_at" = now(), "version" = a."version" + 1
       from ${s}."alert_rules" r join ${s}."devices" d on d."id" = r."device_id"
      where a."id" = r."open_alert_id" and r."kind" = ${NO_DATA} and not d."is_active"
      returning ${STORED_ALERT}
   ), "rules" as (
     update ${s}."alert_rules" r set "open_alert_id" = null where r."id" in (select e."ruleId" from "ended" e)
   )
   select * from "ended"`;

/**
 * The enabled no_data rules of active devices with no open episode whose device has been silent
 * longer than their silenceSeconds: one statement for the tenant, entered through the partial
 * index alert_rules_no_data_index. Locked FOR UPDATE SKIP LOCKED: a rule whose device is being
 * ingested right now (its rules are locked by the ingest) is skipped, the device is not silent; an
 * ingest that comes after waits for this transaction and then resolves what it opened.
 */
export const dueSilencesSql = (s: string) => `select r."id" from ${s}."alert_rules" r join ${s}."devices" d on d."id" = r."device_id"
  where r."kind" = ${NO_DATA} and r."is_enabled" and r."open_alert_id" is null and d."is_active"
    and ${silentSince("r", "d")} + r."silence_seconds" * interval '1 second' < now()
  order by r."id"
  for update of r skip locked`;

/**
 * Opens the episodes of the locked rules, reading the devices' last arrival again (a new snapshot:
 * an ingest that committed after dueSilencesSql's counts), and points the rules at them.
 */
export const openSilencesSql = (s: string) => `with "silent" as (
     select r."id" as "ruleId", r."device_id" as "deviceId", r."severity", ${silentSince("r", "d")} as "since", r."silence_seconds" as "silenceSeconds"
       from ${s}."alert_rules" r join ${s}."devices" d on d."id" = r."device_id"
      where r."id" = any(:ruleIds::uuid[]) and r."open_alert_id" is null and d."is_active"
   ), "opened" as (
     insert into ${s}."alerts" as a ("id", "created_at", "updated_at", "rule_id", "device_id", "severity", "breach_started_at", "fired_at", "silent_since", "reading_count")
     select gen_random_uuid(), now(), now(), x."ruleId", x."deviceId", x."severity", x."since", x."since" + x."silenceSeconds" * interval '1 second', x."since", 0
       from "silent" x
      where x."since" + x."silenceSeconds" * interval '1 second' < now()
     returning ${STORED_ALERT}
   ), "rules" as (
     update ${s}."alert_rules" r set "open_alert_id" = o."id" from "opened" o where r."id" = o."ruleId"
   )
   select * from "opened"`;

export interface NoDataSweepResult {
  tenants: number;
  opened: number;
  resolved: number;
  failed: number;
}

/**
 * no_data episodes (docs/api.md, "Alerts"): a scheduled sweep (every NO_DATA_SWEEP_S, one job
 * across instances: alerts.queue.ts) opens the episode of every device silent longer than its
 * rule's silenceSeconds, with firedAt = silentSince + silenceSeconds, and resolves those of
 * deactivated devices; the device's next ingest resolves its episode (AlertEpisodeService). Per
 * tenant, three statements in one transaction, whatever the number of devices; every change is
 * announced through the outbox in that transaction.
 */
@Injectable()
export class NoDataSweep {
  @Orm()
  private orm!: MikroORM;

  @Inject()
  private tenants!: TenantRegistry;

  @Inject()
  private logger!: Logger;

  /** Every registered tenant; one tenant's failure is logged and does not stop the others. */
  async sweepAll(): Promise<NoDataSweepResult> {
    const result: NoDataSweepResult = {tenants: 0, opened: 0, resolved: 0, failed: 0};
    for await (const page of this.tenants.pages(TENANTS_PAGE)) {
      for (const {id} of page) {
        result.tenants++;
        try {
          const {opened, resolved} = await this.sweepTenant(id);
          result.opened += opened.length;
          result.resolved += resolved.length;
        } catch (error) {
          result.failed++;
          this.logger.warn({event: "NO_DATA_SWEEP_TENANT_FAILED", tenantId: id, error_message: (error as Error).message});
        }
      }
    }
    return result;
  }

  sweepTenant(tenantId: string): Promise<{opened: StoredAlert[]; resolved: StoredAlert[]}> {
    const s = quoteTenantSchema(tenantId);
    return this.orm.em.fork({schema: tenantId}).transactional(async (em: EntityManager) => {
      const resolved = await queryRows<StoredAlert>(em, endInactiveSilencesSql(s), {});
      const due = await queryRows<{id: string}>(em, dueSilencesSql(s), {});
      const opened = due.length ? await queryRows<StoredAlert>(em, openSilencesSql(s), {ruleIds: due.map((r) => r.id)}) : [];
      const changes: AlertChange[] = [
        ...resolved.map((alert): AlertChange => ({type: "alert.resolved", alert})),
        ...opened.map((alert): AlertChange => ({type: "alert.fired", alert}))
      ];
      await announceAlertChanges(em, changes);
      return {opened, resolved};
    });
  }
}
