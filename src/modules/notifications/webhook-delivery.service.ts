import type {MikroORM} from "@mikro-orm/postgresql";
import {Inject, Injectable, Logger} from "@tsed/common";
import {Orm} from "@tsed/mikro-orm";
import {AppConfig} from "../../config/app-config.js";
import {assertTenantId} from "../../platform/tenancy/tenant-id.js";
import type {DeliverPayload} from "./notifications.queue.js";
import {OutboxRelay} from "./outbox-relay.service.js";
import {DISABLE_AFTER_FAILING_MS, nextRetryDelayMs} from "./webhook-retry.js";
import {postWebhook, type SendResult} from "./webhook-sender.js";
import {signedHeaders} from "./webhook-signature.js";
import {type DeliveryStatus, WebhookRepository} from "./webhook.repository.js";

export type AttemptOutcome = "skipped" | "gave-up" | DeliveryStatus;

/**
 * One attempt of one delivery (a BullMQ job, so any instance sends and a restart loses nothing):
 * signs and POSTs the event, logs the attempt, and decides what follows. A 2xx within
 * WEBHOOK_TIMEOUT_MS succeeds; anything else is retried on WEBHOOK_RETRY_SCHEDULE (jitter,
 * Retry-After), until the schedule runs out; a 410 disables the endpoint, and so does failing for
 * 5 days without a success.
 */
@Injectable()
export class WebhookDeliveryService {
  @Orm()
  private orm!: MikroORM;

  @Inject()
  private webhooks!: WebhookRepository;

  @Inject()
  private relay!: OutboxRelay;

  @Inject()
  private config!: AppConfig;

  @Inject()
  private logger!: Logger;

  async attempt({tenantId, deliveryId, attempt}: DeliverPayload): Promise<AttemptOutcome> {
    assertTenantId(tenantId);
    const em = this.orm.em.fork();
    const delivery = await this.webhooks.loadForAttempt(em, tenantId, deliveryId);
    // A job for an attempt made already (the sweep and a worker raced) or a delivery gone with its endpoint.
    if (!delivery || delivery.status !== "pending" || delivery.attempts !== attempt - 1) return "skipped";
    if (!delivery.isEnabled) {
      await this.webhooks.giveUp(em, tenantId, deliveryId);
      return "gave-up";
    }
    const body = JSON.stringify(delivery.body);
    const eventId = (delivery.body as {id: string}).id;
    const secrets = delivery.previousSecret ? [delivery.secret, delivery.previousSecret] : [delivery.secret];
    const attemptedAt = new Date();
    const result = await postWebhook(new URL(delivery.url), signedHeaders(eventId, body, secrets, attemptedAt), body, {
      timeoutMs: this.config.webhooks.timeoutMs,
      allowPrivate: this.config.webhooks.allowPrivate
    });
    return this.record(tenantId, deliveryId, attempt, attemptedAt, result);
  }

  private async record(
    tenantId: string,
    deliveryId: string,
    attempt: number,
    attemptedAt: Date,
    result: SendResult
  ): Promise<AttemptOutcome> {
    const succeeded = result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300;
    const gone = result.statusCode === 410;
    const delayMs = succeeded || gone ? null : nextRetryDelayMs(this.config.webhooks.retryScheduleMs, attempt, result.retryAfterMs);
    const status: DeliveryStatus = succeeded ? "succeeded" : delayMs === null ? "failed" : "pending";
    const recorded = await this.orm.em.fork().transactional(async (em) => {
      const fresh = await this.webhooks.recordAttempt(
        em,
        tenantId,
        deliveryId,
        attempt,
        {attemptedAt, ...result},
        {
          status,
          nextAttemptAt: delayMs === null ? null : new Date(Date.now() + delayMs)
        }
      );
      if (!fresh) return {fresh, enabled: true};
      const enabled = await this.webhooks.markEndpointHealth(em, tenantId, deliveryId, {
        succeeded,
        disableReason: gone ? "The receiver answered 410 Gone" : null,
        disableIfFailingSince: new Date(Date.now() - DISABLE_AFTER_FAILING_MS)
      });
      return {fresh, enabled};
    });
    if (!recorded.fresh) return "skipped";
    if (!recorded.enabled && !succeeded)
      this.logger.warn({event: "WEBHOOK_ENDPOINT_DISABLED", tenantId, deliveryId, statusCode: result.statusCode});
    // The next attempt's job; a disabled endpoint's job gives the delivery up when it runs.
    if (status === "pending") await this.relay.enqueue(tenantId, [{id: deliveryId, attempt: attempt + 1, delayMs: delayMs!}]);
    return status;
  }
}
