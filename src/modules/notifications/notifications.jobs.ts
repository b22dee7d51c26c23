import {Inject} from "@tsed/common";
import {JobController, type JobMethods} from "@tsed/bullmq";
import {type DeliverPayload, NOTIFICATIONS_JOBS, NOTIFICATIONS_QUEUE} from "./notifications.queue.js";
import {NotificationScan, type ScanResult} from "./notification-scan.service.js";
import {OutboxRelay} from "./outbox-relay.service.js";
import {type AttemptOutcome, WebhookDeliveryService} from "./webhook-delivery.service.js";

/** One attempt of one webhook delivery. */
@JobController(NOTIFICATIONS_JOBS.deliver, NOTIFICATIONS_QUEUE)
export class DeliverWebhookJob implements JobMethods<DeliverPayload, AttemptOutcome> {
  @Inject()
  private deliveries!: WebhookDeliveryService;

  handle(payload: DeliverPayload) {
    return this.deliveries.attempt(payload);
  }
}

/** Scheduled every 10 s: what no NOTIFY woke a relay for, and deliveries whose job was lost. */
@JobController(NOTIFICATIONS_JOBS.sweep, NOTIFICATIONS_QUEUE)
export class OutboxSweepJob implements JobMethods<Record<string, never>, {tenants: number; relayed: number; requeued: number}> {
  @Inject()
  private relay!: OutboxRelay;

  handle() {
    return this.relay.sweep();
  }
}

/** Scheduled every NOTIFY_SCAN_S: ended silences and due reminders of every tenant. */
@JobController(NOTIFICATIONS_JOBS.scan, NOTIFICATIONS_QUEUE)
export class NotificationScanJob implements JobMethods<Record<string, never>, ScanResult> {
  @Inject()
  private scan!: NotificationScan;

  handle() {
    return this.scan.scan();
  }
}

/** Scheduled daily: dispatched events past OUTBOX_RETENTION_DAYS. */
@JobController(NOTIFICATIONS_JOBS.purge, NOTIFICATIONS_QUEUE)
export class OutboxPurgeJob implements JobMethods<Record<string, never>, number> {
  @Inject()
  private scan!: NotificationScan;

  handle() {
    return this.scan.purge();
  }
}
