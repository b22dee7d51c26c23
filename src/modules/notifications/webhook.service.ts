import {randomUUID} from "node:crypto";
import {Inject, Injectable} from "@tsed/common";
import {ConflictError, InvalidInputError, NotFoundError} from "../../common/errors.js";
import {AppConfig} from "../../config/app-config.js";
import {queryRows} from "../../platform/db/sql.js";
import {appendEvent} from "../../platform/outbox/outbox.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {OutboxRelay} from "./outbox-relay.service.js";
import {checkWebhookUrl, WebhookUrlError} from "./public-address.js";
import {DEFAULT_EVENT_TYPES} from "./webhook-event-types.js";
import {newWebhookSecret} from "./webhook-signature.js";
import type {
  DeliveryPage,
  DeliveryQuery,
  EventAccepted,
  WebhookEndpoint,
  WebhookEndpointCreate,
  WebhookEndpointCreated,
  WebhookEndpointUpdate,
  WebhookSecretRotated
} from "./webhook.models.js";
import {WebhookRepository} from "./webhook.repository.js";

/** At most this many endpoints per tenant: each event costs a delivery per endpoint. */
export const MAX_ENDPOINTS_PER_TENANT = 20;

/** How long a rotated-out secret keeps signing beside the new one. */
export const ROTATION_OVERLAP_MS = 24 * 3_600_000;

const DELIVERY_PAGE_SIZE = 20;

/** Webhook endpoints of the caller's tenant, their test events, delivery log and replays (role admin). */
@Injectable()
export class WebhookService {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private webhooks!: WebhookRepository;

  @Inject()
  private relay!: OutboxRelay;

  @Inject()
  private config!: AppConfig;

  async create(input: WebhookEndpointCreate): Promise<WebhookEndpointCreated> {
    const url = await this.checkUrl(input.url);
    const {em, tenantId} = this.tenant;
    return em.transactional(async (tx) => {
      // Serializes creations of the tenant, so two at once cannot both pass the limit.
      await queryRows(tx, `select pg_advisory_xact_lock(hashtextextended(:key, 0))`, {key: `webhook-endpoints:${tenantId}`});
      if ((await this.webhooks.countEndpoints(tx, tenantId)) >= MAX_ENDPOINTS_PER_TENANT) {
        throw new ConflictError(`The tenant has ${MAX_ENDPOINTS_PER_TENANT} webhook endpoints already: delete one first`);
      }
      const secret = newWebhookSecret();
      const row = await this.webhooks.insertEndpoint(tx, tenantId, {
        id: randomUUID(),
        url,
        description: input.description ?? null,
        eventTypes: input.eventTypes ?? DEFAULT_EVENT_TYPES,
        secret
      });
      return {...row, secret};
    });
  }

  list(): Promise<WebhookEndpoint[]> {
    return this.webhooks.listEndpoints(this.tenant.em, this.tenant.tenantId);
  }

  async get(id: string): Promise<WebhookEndpoint> {
    return (await this.webhooks.findEndpoint(this.tenant.em, this.tenant.tenantId, id)) ?? notFound(id);
  }

  async update(id: string, change: WebhookEndpointUpdate): Promise<WebhookEndpoint> {
    if (change.disabledReason !== undefined && change.isEnabled !== false)
      throw new InvalidInputError("disabledReason goes with isEnabled: false");
    const url = change.url === undefined ? undefined : await this.checkUrl(change.url);
    return (await this.webhooks.updateEndpoint(this.tenant.em, this.tenant.tenantId, id, {...change, url})) ?? notFound(id);
  }

  async remove(id: string): Promise<void> {
    if (!(await this.webhooks.deleteEndpoint(this.tenant.em, this.tenant.tenantId, id))) notFound(id);
  }

  async rotateSecret(id: string): Promise<WebhookSecretRotated> {
    const secret = newWebhookSecret();
    const until = new Date(Date.now() + ROTATION_OVERLAP_MS);
    const row = await this.webhooks.rotateSecret(this.tenant.em, this.tenant.tenantId, id, secret, until);
    if (!row) notFound(id);
    return {secret, previousSecretExpiresAt: until};
  }

  /** Sends `webhook.test` to this endpoint only, through the outbox like any event (so the delivery log shows it). */
  async sendTest(id: string): Promise<EventAccepted> {
    const {em} = this.tenant;
    await this.get(id);
    const event = await appendEvent(em, {
      type: "webhook.test",
      endpointId: id,
      data: {endpointId: id, message: "A test event sent from the API (POST /api/v1/admin/webhooks/{id}/test)"}
    });
    return {eventId: event.id};
  }

  async deliveries(id: string, query: DeliveryQuery): Promise<DeliveryPage> {
    await this.get(id);
    const page = query.page ?? 1;
    const {items, total} = await this.webhooks.listDeliveries(this.tenant.em, this.tenant.tenantId, id, {
      status: query.status,
      page,
      pageSize: DELIVERY_PAGE_SIZE
    });
    return {items: items as never, total, page, pageSize: DELIVERY_PAGE_SIZE};
  }

  /** Sends the event to the endpoint again now, whatever became of it (failed, suppressed, or never matched). */
  async replay(id: string, eventId: string): Promise<{deliveryId: string}> {
    const {em, tenantId} = this.tenant;
    await this.get(id);
    const replayed = await this.webhooks.replay(em, tenantId, id, eventId, randomUUID());
    if (!replayed) throw new NotFoundError("Event", eventId);
    await this.relay.enqueue(tenantId, [replayed]);
    return {deliveryId: replayed.id};
  }

  private async checkUrl(raw: string): Promise<string> {
    try {
      return (await checkWebhookUrl(raw, {allowPrivate: this.config.webhooks.allowPrivate})).toString();
    } catch (error) {
      if (error instanceof WebhookUrlError) throw new InvalidInputError(error.message, [{path: "url", message: error.message}]);
      throw error;
    }
  }
}

function notFound(id: string): never {
  throw new NotFoundError("Webhook endpoint", id);
}
