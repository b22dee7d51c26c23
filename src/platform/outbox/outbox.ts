import {randomUUID} from "node:crypto";
import type {EntityManager} from "@mikro-orm/postgresql";
import {queryRows} from "../db/sql.js";
import {assertTenantId, quoteTenantSchema} from "../tenancy/tenant-id.js";

/**
 * The body of every event, the same on the live stream and in a webhook's request
 * (docs/api.md, "Receiving webhooks").
 */
export interface EventBody<T = unknown> {
  id: string;
  type: string;
  occurredAt: string;
  tenantId: string;
  data: T;
}

export interface NewEvent<T = unknown> {
  type: string;
  data: T;
  /** Default: now. */
  occurredAt?: Date;
  /** For one webhook endpoint only (`webhook.test`); such events never reach the stream. */
  endpointId?: string;
}

/** The channel the relay listens on (the payload names the tenant); NOTIFY is sent on commit only. */
export const OUTBOX_CHANNEL = "smart_thermo_outbox";

/**
 * Appends an event to the tenant's outbox in the transaction of `em` (the entity manager of the
 * change it announces, bound to the tenant's schema): it exists exactly when that change commits.
 * The relay (notifications feature) then moves it to the live stream and to webhook deliveries,
 * also after a crash right after the commit, as it sweeps undispatched rows. This lives in
 * platform/ so that every feature, alerts included, can announce changes without importing the
 * feature that delivers them.
 */
export async function appendEvent<T>(em: EntityManager, event: NewEvent<T>): Promise<EventBody<T>> {
  const [body] = await appendEvents(em, [event]);
  return body!;
}

/**
 * appendEvent for several events of one change, in one statement (one round trip, one NOTIFY),
 * in the given order: a batch of readings that fires and resolves an episode announces both.
 */
export async function appendEvents<T>(em: EntityManager, events: readonly NewEvent<T>[]): Promise<EventBody<T>[]> {
  if (events.length === 0) return [];
  const tenantId = assertTenantId(em.schema);
  const bodies = events.map((event): EventBody<T> => ({
    id: randomUUID(),
    type: event.type,
    occurredAt: (event.occurredAt ?? new Date()).toISOString(),
    tenantId,
    data: event.data
  }));
  await queryRows(
    em,
    `with "appended" as (
       insert into ${quoteTenantSchema(tenantId)}."events" ("id", "type", "occurred_at", "body", "endpoint_id")
       select v."id", v."type", v."occurred_at", v."body", v."endpoint_id"
         from unnest(:ids::uuid[], :types::text[], :occurredAts::timestamptz[], :bodies::jsonb[], :endpointIds::uuid[])
              with ordinality as v("id", "type", "occurred_at", "body", "endpoint_id", "n")
        order by v."n"
     )
     select pg_notify(:channel, :tenantId)`,
    {
      ids: bodies.map((body) => body.id),
      types: bodies.map((body) => body.type),
      occurredAts: bodies.map((body) => body.occurredAt),
      bodies: bodies.map((body) => JSON.stringify(body)),
      endpointIds: events.map((event) => event.endpointId ?? null),
      channel: OUTBOX_CHANNEL,
      tenantId
    }
  );
  return bodies;
}
