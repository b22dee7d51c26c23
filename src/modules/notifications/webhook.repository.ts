import type {EntityManager} from "@mikro-orm/postgresql";
import {Injectable} from "@tsed/common";
import {queryRows} from "../../platform/db/sql.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";

export interface WebhookEndpointRow {
  id: string;
  url: string;
  description: string | null;
  eventTypes: string[];
  isEnabled: boolean;
  disabledReason: string | null;
  previousSecretExpiresAt: Date | null;
  failingSince: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface EndpointChange {
  url?: string;
  description?: string | null;
  eventTypes?: string[];
  isEnabled?: boolean;
  disabledReason?: string | null;
}

export type DeliveryStatus = "pending" | "succeeded" | "failed" | "suppressed";

export interface DeliveryAttemptRow {
  attemptedAt: string;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

export interface DeliveryRow {
  id: string;
  eventId: string;
  eventType: string;
  status: DeliveryStatus;
  attemptCount: number;
  nextAttemptAt: Date | null;
  createdAt: Date;
  attempts: DeliveryAttemptRow[];
}

/** What an attempt needs: the endpoint as it is now, the event's body, and where the delivery stands. */
export interface DeliveryToSend {
  status: DeliveryStatus;
  attempts: number;
  url: string;
  isEnabled: boolean;
  secret: string;
  previousSecret: string | null;
  body: object;
}

export interface NewDelivery {
  id: string;
  endpointId: string;
  eventId: string;
  status: "pending" | "suppressed";
}

/** An endpoint as the relay matches events against it. */
export interface MatchableEndpoint {
  id: string;
  eventTypes: string[];
}

/**
 * The enabled endpoints of `schema` as one JSON array of MatchableEndpoint: a scalar subquery the
 * relay puts in the statement that claims its events, so that both take one round trip.
 */
export const enabledEndpointsJsonSql = (schema: string) =>
  `(select coalesce(json_agg(json_build_object('id', w."id"::text, 'eventTypes', w."event_types")), '[]'::json)
      from ${schema}."webhook_endpoints" w where w."is_enabled")`;

const ENDPOINT_COLUMNS = `"id"::text as "id", "url", "description", "event_types" as "eventTypes", "is_enabled" as "isEnabled",
  "disabled_reason" as "disabledReason",
  case when "previous_secret_expires_at" > now() then "previous_secret_expires_at" end as "previousSecretExpiresAt",
  "failing_since" as "failingSince", "created_at" as "createdAt", "updated_at" as "updatedAt"`;

/**
 * Statements on a tenant's webhook tables. Every method takes the entity manager to run on (the
 * request's, a job's fork, or a transaction) and the tenant, validated before it names a schema:
 * the relay and the delivery jobs work outside any request.
 */
@Injectable()
export class WebhookRepository {
  async countEndpoints(em: EntityManager, tenantId: string): Promise<number> {
    const [row] = await queryRows<{n: number}>(
      em,
      `select count(*)::int as "n" from ${quoteTenantSchema(tenantId)}."webhook_endpoints"`,
      {}
    );
    return row!.n;
  }

  async insertEndpoint(
    em: EntityManager,
    tenantId: string,
    endpoint: {id: string; url: string; description: string | null; eventTypes: string[]; secret: string}
  ): Promise<WebhookEndpointRow> {
    const [row] = await queryRows<WebhookEndpointRow>(
      em,
      `insert into ${quoteTenantSchema(tenantId)}."webhook_endpoints" ("id", "url", "description", "event_types", "secret")
       values (:id::uuid, :url, :description, array(select jsonb_array_elements_text(:eventTypes::jsonb)), :secret)
       returning ${ENDPOINT_COLUMNS}`,
      {...endpoint, eventTypes: JSON.stringify(endpoint.eventTypes)}
    );
    return row!;
  }

  listEndpoints(em: EntityManager, tenantId: string): Promise<WebhookEndpointRow[]> {
    return queryRows<WebhookEndpointRow>(
      em,
      `select ${ENDPOINT_COLUMNS} from ${quoteTenantSchema(tenantId)}."webhook_endpoints" order by "created_at", "id"`,
      {}
    );
  }

  async findEndpoint(em: EntityManager, tenantId: string, id: string): Promise<WebhookEndpointRow | undefined> {
    const [row] = await queryRows<WebhookEndpointRow>(
      em,
      `select ${ENDPOINT_COLUMNS} from ${quoteTenantSchema(tenantId)}."webhook_endpoints" where "id" = :id::uuid`,
      {id}
    );
    return row;
  }

  /** Applies the change (absent fields stay); enabling again forgets why and since when it failed. */
  async updateEndpoint(em: EntityManager, tenantId: string, id: string, change: EndpointChange): Promise<WebhookEndpointRow | undefined> {
    const [row] = await queryRows<WebhookEndpointRow>(
      em,
      `update ${quoteTenantSchema(tenantId)}."webhook_endpoints" set
         "url" = coalesce(:url::text, "url"),
         "description" = case when :setDescription::boolean then :description::text else "description" end,
         "event_types" = case when :eventTypes::jsonb is null then "event_types" else array(select jsonb_array_elements_text(:eventTypes::jsonb)) end,
         "is_enabled" = coalesce(:isEnabled::boolean, "is_enabled"),
         "disabled_reason" = case when :isEnabled::boolean is true then null when :isEnabled::boolean is false then :disabledReason::text else "disabled_reason" end,
         "failing_since" = case when :isEnabled::boolean is true then null else "failing_since" end,
         "updated_at" = now()
       where "id" = :id::uuid
       returning ${ENDPOINT_COLUMNS}`,
      {
        id,
        url: change.url,
        setDescription: change.description !== undefined,
        description: change.description,
        eventTypes: change.eventTypes ? JSON.stringify(change.eventTypes) : null,
        isEnabled: change.isEnabled,
        disabledReason: change.disabledReason ?? "Disabled by an admin"
      }
    );
    return row;
  }

  async deleteEndpoint(em: EntityManager, tenantId: string, id: string): Promise<boolean> {
    const rows = await queryRows(em, `delete from ${quoteTenantSchema(tenantId)}."webhook_endpoints" where "id" = :id::uuid returning 1`, {
      id
    });
    return rows.length > 0;
  }

  /** The new secret signs from now on; the current one keeps signing beside it until `previousUntil`. */
  async rotateSecret(
    em: EntityManager,
    tenantId: string,
    id: string,
    secret: string,
    previousUntil: Date
  ): Promise<WebhookEndpointRow | undefined> {
    const [row] = await queryRows<WebhookEndpointRow>(
      em,
      `update ${quoteTenantSchema(tenantId)}."webhook_endpoints" set
         "previous_secret" = "secret", "previous_secret_expires_at" = :previousUntil::timestamptz, "secret" = :secret, "updated_at" = now()
       where "id" = :id::uuid returning ${ENDPOINT_COLUMNS}`,
      {id, secret, previousUntil: previousUntil.toISOString()}
    );
    return row;
  }

  /** Inserts the deliveries that do not exist yet (a relay that runs twice adds nothing); returns the new ones. */
  insertDeliveries(em: EntityManager, tenantId: string, deliveries: NewDelivery[]): Promise<NewDelivery[]> {
    if (!deliveries.length) return Promise.resolve([]);
    return queryRows<NewDelivery>(
      em,
      `insert into ${quoteTenantSchema(tenantId)}."webhook_deliveries" ("id", "endpoint_id", "event_id", "status", "next_attempt_at")
       select d."id", d."endpointId", d."eventId", d."status", case when d."status" = 'pending' then now() end
       from jsonb_to_recordset(:rows::jsonb) as d("id" uuid, "endpointId" uuid, "eventId" uuid, "status" text)
       on conflict ("endpoint_id", "event_id") do nothing
       returning "id"::text as "id", "endpoint_id"::text as "endpointId", "event_id"::text as "eventId", "status"`,
      {rows: JSON.stringify(deliveries)}
    );
  }

  async loadForAttempt(em: EntityManager, tenantId: string, deliveryId: string): Promise<DeliveryToSend | undefined> {
    const [row] = await queryRows<DeliveryToSend>(
      em,
      `select d."status", d."attempts", e."url", e."is_enabled" as "isEnabled", e."secret",
         case when e."previous_secret_expires_at" > now() then e."previous_secret" end as "previousSecret", ev."body"
       from ${quoteTenantSchema(tenantId)}."webhook_deliveries" d
       join ${quoteTenantSchema(tenantId)}."webhook_endpoints" e on e."id" = d."endpoint_id"
       join ${quoteTenantSchema(tenantId)}."events" ev on ev."id" = d."event_id"
       where d."id" = :deliveryId::uuid`,
      {deliveryId}
    );
    return row;
  }

  /**
   * Records attempt `attempt` of the delivery and where it now stands, unless another worker
   * recorded that attempt first (false then: the caller schedules nothing).
   */
  async recordAttempt(
    em: EntityManager,
    tenantId: string,
    deliveryId: string,
    attempt: number,
    result: {attemptedAt: Date; statusCode: number | null; error: string | null; durationMs: number},
    next: {status: DeliveryStatus; nextAttemptAt: Date | null}
  ): Promise<boolean> {
    const s = quoteTenantSchema(tenantId);
    const rows = await queryRows(
      em,
      `with "updated" as (
         update ${s}."webhook_deliveries" set "attempts" = :attempt, "status" = :status, "next_attempt_at" = :nextAttemptAt::timestamptz, "updated_at" = now()
         where "id" = :deliveryId::uuid and "attempts" = :attempt - 1 and "status" = 'pending' returning "id"
       )
       insert into ${s}."webhook_attempts" ("delivery_id", "attempted_at", "status_code", "error", "duration_ms")
       select "id", :attemptedAt::timestamptz, :statusCode, :error, :durationMs from "updated" returning 1`,
      {
        deliveryId,
        attempt,
        status: next.status,
        nextAttemptAt: next.nextAttemptAt?.toISOString(),
        attemptedAt: result.attemptedAt.toISOString(),
        statusCode: result.statusCode,
        error: result.error?.slice(0, 500),
        durationMs: result.durationMs
      }
    );
    return rows.length > 0;
  }

  /** A delivery that will not be attempted (its endpoint was disabled meanwhile). */
  async giveUp(em: EntityManager, tenantId: string, deliveryId: string): Promise<void> {
    await queryRows(
      em,
      `update ${quoteTenantSchema(tenantId)}."webhook_deliveries" set "status" = 'failed', "next_attempt_at" = null, "updated_at" = now()
       where "id" = :deliveryId::uuid and "status" = 'pending'`,
      {deliveryId}
    );
  }

  /**
   * The endpoint's health after an attempt: a success clears `failing_since`; a failure sets it
   * when unset, and disables the endpoint when `disableReason` is given or it has been failing
   * since before `disableIfFailingSince`. Returns whether the endpoint is enabled now (a success
   * at an endpoint that was not failing: true, without a write).
   */
  async markEndpointHealth(
    em: EntityManager,
    tenantId: string,
    deliveryId: string,
    outcome: {succeeded: boolean; disableReason: string | null; disableIfFailingSince: Date}
  ): Promise<boolean> {
    const s = quoteTenantSchema(tenantId);
    const [row] = await queryRows<{isEnabled: boolean}>(
      em,
      `update ${s}."webhook_endpoints" e set
         "failing_since" = case when :succeeded::boolean then null else coalesce(e."failing_since", now()) end,
         "is_enabled" = case
           when :succeeded::boolean then e."is_enabled"
           when :disableReason::text is not null then false
           when e."failing_since" < :failingLimit::timestamptz then false
           else e."is_enabled" end,
         "disabled_reason" = case
           when not e."is_enabled" or :succeeded::boolean then e."disabled_reason"
           when :disableReason::text is not null then :disableReason::text
           when e."failing_since" < :failingLimit::timestamptz then 'Every delivery failed for 5 days'
           else e."disabled_reason" end,
         "updated_at" = now()
       from ${s}."webhook_deliveries" d where d."id" = :deliveryId::uuid and e."id" = d."endpoint_id"
         and not (:succeeded::boolean and e."failing_since" is null)
       returning e."is_enabled" as "isEnabled"`,
      {
        deliveryId,
        succeeded: outcome.succeeded,
        disableReason: outcome.disableReason,
        failingLimit: outcome.disableIfFailingSince.toISOString()
      }
    );
    // A success at a healthy endpoint changes nothing, and writes nothing: every delivery of an
    // endpoint updating its row serialized them all on that row's lock (bench:notify: 161
    // deliveries/s with 32 at once to a receiver answering in 50 ms).
    return row?.isEnabled ?? outcome.succeeded;
  }

  async listDeliveries(
    em: EntityManager,
    tenantId: string,
    endpointId: string,
    filter: {status?: DeliveryStatus; page: number; pageSize: number}
  ): Promise<{items: DeliveryRow[]; total: number}> {
    const s = quoteTenantSchema(tenantId);
    const bindings = {endpointId, status: filter.status, limit: filter.pageSize, offset: (filter.page - 1) * filter.pageSize};
    const items = await queryRows<DeliveryRow>(
      em,
      `select d."id"::text as "id", d."event_id"::text as "eventId", ev."type" as "eventType", d."status", d."attempts" as "attemptCount",
         d."next_attempt_at" as "nextAttemptAt", d."created_at" as "createdAt",
         coalesce((select json_agg(json_build_object('attemptedAt', a."attempted_at", 'statusCode', a."status_code", 'error', a."error", 'durationMs', a."duration_ms") order by a."id")
                   from ${s}."webhook_attempts" a where a."delivery_id" = d."id"), '[]') as "attempts"
       from ${s}."webhook_deliveries" d join ${s}."events" ev on ev."id" = d."event_id"
       where d."endpoint_id" = :endpointId::uuid and (:status::text is null or d."status" = :status::text)
       order by d."created_at" desc, d."id" desc limit :limit offset :offset`,
      bindings
    );
    const [count] = await queryRows<{n: number}>(
      em,
      `select count(*)::int as "n" from ${s}."webhook_deliveries" d where d."endpoint_id" = :endpointId::uuid and (:status::text is null or d."status" = :status::text)`,
      bindings
    );
    return {items, total: count!.n};
  }

  /**
   * Makes the endpoint's delivery of the event pending again, now (creating it when the event was
   * never delivered there); undefined when the tenant has no such event. Returns the attempt the
   * next job makes.
   */
  async replay(
    em: EntityManager,
    tenantId: string,
    endpointId: string,
    eventId: string,
    newId: string
  ): Promise<{id: string; attempt: number} | undefined> {
    const s = quoteTenantSchema(tenantId);
    const [row] = await queryRows<{id: string; attempts: number}>(
      em,
      `insert into ${s}."webhook_deliveries" ("id", "endpoint_id", "event_id", "status", "next_attempt_at")
       select :newId::uuid, :endpointId::uuid, ev."id", 'pending', now() from ${s}."events" ev where ev."id" = :eventId::uuid
       on conflict ("endpoint_id", "event_id") do update set "status" = 'pending', "next_attempt_at" = now(), "updated_at" = now()
       returning "id"::text as "id", "attempts"`,
      {newId, endpointId, eventId}
    );
    return row && {id: row.id, attempt: row.attempts + 1};
  }

  /** Pending deliveries whose attempt is overdue by more than `graceMs` (their job was lost: Redis down, a crash before enqueueing). */
  overdueDeliveries(em: EntityManager, tenantId: string, graceMs: number, limit: number): Promise<{id: string; attempt: number}[]> {
    return queryRows(
      em,
      `select "id"::text as "id", "attempts" + 1 as "attempt" from ${quoteTenantSchema(tenantId)}."webhook_deliveries"
       where "status" = 'pending' and "next_attempt_at" < now() - make_interval(secs => :graceS) order by "next_attempt_at" limit :limit`,
      {graceS: graceMs / 1000, limit}
    );
  }
}
