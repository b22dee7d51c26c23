import {Inject} from "@tsed/common";
import {JobController, type JobMethods} from "@tsed/bullmq";
import {type DeliverPayload, NOTIFICATIONS_JOBS, NOTIFICATIONS_QUEUE} from "./notifications.queue.js";
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
