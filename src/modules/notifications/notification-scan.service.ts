import {Inject, Injectable, Logger} from "@tsed/common";
import {AppConfig} from "../../config/app-config.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {runAsTenant} from "../../platform/tenancy/tenant-scope.js";
import {TenantRegistry} from "../../platform/tenancy/tenant-registry.repository.js";
import {AlertEvents, type AlertChange} from "../alerts/alert-events.js";
import {NotificationScheduleRepository} from "./notification-schedule.repository.js";

const TENANT_PAGE = 500;
/** Events deleted per statement by the purge (a tenant with more takes several statements). */
const PURGE_BATCH = 5_000;

export interface ScanResult {
  tenants: number;
  afterSilence: number;
  reminders: number;
}

/**
 * The notifications' scheduled work, one BullMQ job per period whichever instance runs it
 * (NOTIFY_SCAN_S): per tenant, the silences that ended send the alerts they held back
 * (`alert.fired` with `afterSilence: true`), and due reminders are sent (`alert.reminder`). Both
 * are events appended through the outbox in the transaction that records them (a silence's
 * `released_at`, an alert's `last_reminded_at`), so a scan killed half-way sends each once.
 * The daily purge of old outbox events lives here too.
 */
@Injectable()
export class NotificationScan {
  @Inject()
  private schedule!: NotificationScheduleRepository;

  @Inject()
  private events!: AlertEvents;

  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private tenants!: TenantRegistry;

  @Inject()
  private config!: AppConfig;

  @Inject()
  private logger!: Logger;

  async scan(): Promise<ScanResult> {
    const result: ScanResult = {tenants: 0, afterSilence: 0, reminders: 0};
    await this.eachTenant(async (tenantId) => {
      result.tenants++;
      const {afterSilence, reminders} = await this.scanTenant(tenantId);
      result.afterSilence += afterSilence;
      result.reminders += reminders;
    });
    return result;
  }

  /** One tenant's ended silences and due reminders, each in a transaction of its own. */
  scanTenant(tenantId: string): Promise<{afterSilence: number; reminders: number}> {
    return runAsTenant(tenantId, async () => {
      const afterSilence = await this.inTransaction(async () => {
        const held = await this.schedule.releaseEndedSilences(this.tenant.em, tenantId);
        return held.map((alert): AlertChange => ({type: "alert.fired", alert, extra: {afterSilence: true}}));
      });
      const reminders = await this.inTransaction(async () => {
        const due = await this.schedule.dueReminders(this.tenant.em, tenantId);
        return due.filter((row) => !row.silenced).map((row): AlertChange => ({type: "alert.reminder", alert: withoutSilenced(row)}));
      });
      return {afterSilence, reminders};
    });
  }

  /** Deletes dispatched events past OUTBOX_RETENTION_DAYS in every tenant; returns how many. */
  async purge(now = Date.now()): Promise<number> {
    const before = new Date(now - this.config.notifications.outboxRetentionMs);
    let purged = 0;
    await this.eachTenant((tenantId) =>
      runAsTenant(tenantId, async () => {
        for (;;) {
          const n = await this.schedule.purgeDispatched(this.tenant.em, tenantId, before, PURGE_BATCH);
          purged += n;
          if (n < PURGE_BATCH) return;
        }
      })
    );
    return purged;
  }

  private async inTransaction(changes: () => Promise<AlertChange[]>): Promise<number> {
    return this.tenant.em.transactional(async () => {
      const list = await changes();
      await this.events.announce(list);
      return list.length;
    });
  }

  private async eachTenant(task: (tenantId: string) => Promise<void>): Promise<void> {
    for await (const page of this.tenants.pages(TENANT_PAGE)) {
      for (const {id} of page) {
        try {
          await task(id);
        } catch (error) {
          // One tenant's failure (a schema not migrated yet, a deadlock) must not stop the others; the next run retries.
          this.logger.warn({event: "NOTIFICATION_SCAN_TENANT_FAILED", tenantId: id, error_message: (error as Error).message});
        }
      }
    }
  }
}

function withoutSilenced<T extends {silenced: boolean}>(row: T): Omit<T, "silenced"> {
  const alert: Omit<T, "silenced"> & {silenced?: boolean} = {...row};
  delete alert.silenced;
  return alert;
}
