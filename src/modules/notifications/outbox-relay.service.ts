import {randomUUID} from "node:crypto";
import {setTimeout as sleep} from "node:timers/promises";
import type {EntityManager, MikroORM} from "@mikro-orm/postgresql";
import {Inject, Injectable, Logger} from "@tsed/common";
import {InjectQueue} from "@tsed/bullmq";
import {Orm} from "@tsed/mikro-orm";
import type {Queue} from "bullmq";
import pg from "pg";
import {AppConfig} from "../../config/app-config.js";
import {RedisClient} from "../../platform/cache/redis.provider.js";
import {queryRows} from "../../platform/db/sql.js";
import {outboxRelayEvents} from "../../platform/observability/metrics.js";
import {type EventBody, OUTBOX_CHANNEL} from "../../platform/outbox/outbox.js";
import {assertTenantId, quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import {TenantRegistry} from "../../platform/tenancy/tenant-registry.repository.js";
import {EventStreamLog, eventDeviceId} from "./event-stream-log.js";
import {type DeliverPayload, deliverJobId, NOTIFICATIONS_JOBS, NOTIFICATIONS_QUEUE} from "./notifications.queue.js";
import {SilenceRepository} from "./silence.repository.js";
import {matchesEventTypes} from "./webhook-event-types.js";
import {enabledEndpointsJsonSql, type MatchableEndpoint, type NewDelivery, WebhookRepository} from "./webhook.repository.js";

/** Events moved per transaction. */
const BATCH = 200;
/** A pending delivery overdue by this much lost its job (Redis was down, or the process died before enqueueing): the sweep enqueues it again. */
const LOST_JOB_GRACE_MS = 60_000;
const TENANT_PAGE = 500;
/**
 * A tenant's drains start at most this often: the first event after a quiet spell is relayed at
 * once, and those committed within this time after a drain began wait for the next one, which
 * takes them together. A burst (a cold room's sensors all firing when its door is left open, or
 * busy batches that open episodes) then costs one relay transaction per interval (BEGIN, lock,
 * claim, mark, COMMIT and a Redis round trip), not one per event; the stream's bound is 1 s.
 */
export const RELAY_INTERVAL_MS = 100;
/** A failed drain is tried again after this long, doubling up to MAX_RETRY_MS. */
const RETRY_MS = 1_000;
const MAX_RETRY_MS = 10_000;

/**
 * Moves committed outbox events (platform/outbox) to delivery: XADD to the tenant's stream log and
 * one webhook delivery per matching endpoint, then marks them dispatched, all in one transaction
 * per batch, and enqueues the delivery jobs once it has committed.
 *
 * Why a polling relay and not BullMQ flows or an enqueue after commit: the event must survive a
 * process killed right after the write's commit, and only the database holds it then. The relay
 * is woken by the NOTIFY that appendEvent sends on commit (any instance running workers
 * listens; at once, or in a burst within RELAY_INTERVAL_MS), and a scheduled sweep every 10 s
 * catches what no listener heard. At least once:
 * a relay killed after XADD but before its commit relays the batch again (stream clients see the
 * event id twice; deliveries are unique per event and endpoint, so no receiver gets a second one).
 *
 * One relay per tenant at a time (a transaction-level advisory lock), so a tenant's events reach
 * the stream in `seq` order; XADD's ids increase per tenant whatever the order.
 */
@Injectable()
export class OutboxRelay {
  @Orm()
  private orm!: MikroORM;

  @Inject(RedisClient)
  private redis!: RedisClient;

  @InjectQueue(NOTIFICATIONS_QUEUE)
  private queue!: Queue<DeliverPayload>;

  @Inject()
  private config!: AppConfig;

  @Inject()
  private log!: EventStreamLog;

  @Inject()
  private webhooks!: WebhookRepository;

  @Inject()
  private silences!: SilenceRepository;

  @Inject()
  private tenants!: TenantRegistry;

  @Inject()
  private logger!: Logger;

  private listener: pg.Client | undefined;
  private stopped = false;
  /** Per tenant: the drain running now, and whether another NOTIFY came meanwhile. */
  private draining = new Map<string, {again: boolean; done: Promise<void>}>();
  /** Per tenant whose last drain failed: how many failed in a row (the retry's backoff). */
  private failures = new Map<string, number>();

  async $onReady() {
    if (this.config.runWorkers) await this.listen();
  }

  async $onDestroy() {
    this.stopped = true;
    await this.listener?.end().catch(() => undefined);
    await Promise.allSettled([...this.draining.values()].map((d) => d.done));
  }

  /** Relays everything the tenant has committed and not relayed; returns how many events. */
  async drain(tenantId: string): Promise<number> {
    assertTenantId(tenantId);
    let total = 0;
    for (;;) {
      const {relayed, deliveries} = await this.relayBatch(tenantId);
      total += relayed;
      await this.enqueue(
        tenantId,
        deliveries.map((d) => ({id: d.id, attempt: 1}))
      );
      if (relayed < BATCH) return total;
    }
  }

  /**
   * Wakes a drain of the tenant: at once, unless one began less than RELAY_INTERVAL_MS ago (then
   * when that interval ends). Coalesced: a drain running or due runs once more for any number of
   * wake-ups meanwhile.
   */
  kick(tenantId: string): void {
    const running = this.draining.get(tenantId);
    if (running) {
      running.again = true;
      return;
    }
    const state = {again: true, done: Promise.resolve()};
    state.done = (async () => {
      while (state.again && !this.stopped) {
        state.again = false;
        const started = Date.now();
        try {
          await this.drain(tenantId);
        } catch (error) {
          // Redis or Postgres being down is the usual cause. The sweep retries too, but it is a
          // job in Redis: while Redis is down (or back but empty) only this retry brings the
          // events out, with a backoff up to 10 s.
          const failures = (this.failures.get(tenantId) ?? 0) + 1;
          this.failures.set(tenantId, failures);
          this.logger.warn({event: "OUTBOX_RELAY_FAILED", tenantId, failures, error_message: (error as Error).message});
          if (!this.stopped)
            setTimeout(() => !this.stopped && this.kick(tenantId), Math.min(RETRY_MS * 2 ** (failures - 1), MAX_RETRY_MS)).unref();
          return;
        }
        this.failures.delete(tenantId);
        // Kept in `draining` for the rest of the interval, so that wake-ups meanwhile wait for it.
        const rest = started + RELAY_INTERVAL_MS - Date.now();
        if (rest > 0 && !this.stopped) await sleep(rest);
      }
    })().finally(() => this.draining.delete(tenantId));
    this.draining.set(tenantId, state);
  }

  /** The scheduled sweep: every registered tenant's undispatched events and lost delivery jobs. */
  async sweep(): Promise<{tenants: number; relayed: number; requeued: number}> {
    let tenants = 0;
    let relayed = 0;
    let requeued = 0;
    for await (const page of this.tenants.pages(TENANT_PAGE)) {
      for (const {id} of page) {
        tenants++;
        try {
          if (await this.hasUndispatched(id)) relayed += await this.drain(id);
          const overdue = await this.webhooks.overdueDeliveries(this.orm.em.fork(), id, LOST_JOB_GRACE_MS, 500);
          await this.enqueue(id, overdue);
          requeued += overdue.length;
        } catch (error) {
          this.logger.warn({event: "OUTBOX_SWEEP_TENANT_FAILED", tenantId: id, error_message: (error as Error).message});
        }
      }
    }
    return {tenants, relayed, requeued};
  }

  async enqueue(tenantId: string, deliveries: readonly {id: string; attempt: number; delayMs?: number}[]): Promise<void> {
    if (!deliveries.length) return;
    await this.queue.addBulk(
      deliveries.map(({id, attempt, delayMs}) => {
        const data = {tenantId, deliveryId: id, attempt};
        return {
          name: NOTIFICATIONS_JOBS.deliver,
          data,
          // A job that throws (Postgres or Redis down) is retried; its id is freed when it finally
          // fails, so the sweep can enqueue the attempt again.
          opts: {
            jobId: deliverJobId(data),
            delay: delayMs,
            attempts: 5,
            backoff: {type: "exponential", delay: 2_000},
            removeOnComplete: {age: 3600},
            removeOnFail: true
          }
        };
      })
    );
  }

  private async hasUndispatched(tenantId: string): Promise<boolean> {
    const rows = await queryRows(
      this.orm.em.fork(),
      `select 1 from ${quoteTenantSchema(tenantId)}."events" where "dispatched_at" is null limit 1`,
      {}
    ).catch(() => []);
    return rows.length > 0;
  }

  private relayBatch(tenantId: string): Promise<{relayed: number; deliveries: NewDelivery[]}> {
    const s = quoteTenantSchema(tenantId);
    return this.orm.em.fork().transactional(async (em: EntityManager) => {
      // Waits for another relay of the tenant to commit its batch, then reads after it: an event
      // whose NOTIFY came while that relay worked is not left for the sweep.
      await queryRows(em, `select pg_advisory_xact_lock(hashtextextended(:key, 0))`, {key: `outbox-relay:${tenantId}`});
      // With the endpoints they may go to (the same on every row), read in the same round trip.
      const events = await queryRows<{seq: string; body: EventBody; endpointId: string | null; endpoints: MatchableEndpoint[]}>(
        em,
        `select "seq", "body", "endpoint_id"::text as "endpointId", ${enabledEndpointsJsonSql(s)} as "endpoints" from ${s}."events"
         where "dispatched_at" is null order by "seq" limit :limit for update of "events" skip locked`,
        {limit: BATCH}
      );
      outboxRelayEvents.observe(events.length);
      if (!events.length) return {relayed: 0, deliveries: []};

      const endpoints = events[0]!.endpoints;
      const planned: NewDelivery[] = [];
      for (const {body, endpointId} of events) {
        const targets = endpointId ? [endpointId] : endpoints.filter((e) => matchesEventTypes(e.eventTypes, body.type)).map((e) => e.id);
        if (!targets.length) continue;
        const suppressed =
          body.type.startsWith("alert.") && (await this.silences.isSilenced(em, tenantId, alertScope(body), new Date(body.occurredAt)));
        for (const target of targets)
          planned.push({id: randomUUID(), endpointId: target, eventId: body.id, status: suppressed ? "suppressed" : "pending"});
      }
      const inserted = await this.webhooks.insertDeliveries(em, tenantId, planned);

      // A silence holds back webhooks only: the stream had the alert when it fired, so the
      // `afterSilence` repeat is for webhooks alone.
      const streamed = events.map((e) => e.body).filter((body) => !body.type.startsWith("webhook.") && !isAfterSilence(body));
      if (streamed.length) {
        const pipeline = this.redis.pipeline();
        this.log.append(pipeline, tenantId, streamed);
        const results = (await pipeline.exec()) ?? [];
        const failed = results.find(([error]) => error);
        if (failed) throw failed[0];
      }
      await queryRows(
        em,
        `update ${s}."events" set "dispatched_at" = now() where "seq" in (select jsonb_array_elements_text(:seqs::jsonb)::bigint)`,
        {
          seqs: JSON.stringify(events.map((e) => e.seq))
        }
      );
      return {relayed: events.length, deliveries: inserted.filter((d) => d.status === "pending")};
    });
  }

  /** LISTEN on a connection of its own (a pooled one would be handed back): NOTIFY wakes the tenant's drain. */
  private async listen(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({connectionString: this.config.databaseUrl});
    client.on("notification", (message) => {
      if (message.channel === OUTBOX_CHANNEL && message.payload) this.kick(message.payload);
    });
    client.on("error", (error) => {
      this.logger.warn({event: "OUTBOX_LISTENER_LOST", error_message: error.message});
      void client.end().catch(() => undefined);
      // The sweep relays meanwhile; listen again shortly.
      if (!this.stopped) setTimeout(() => void this.listen().catch(() => undefined), 2_000).unref();
    });
    try {
      await client.connect();
      await client.query(`listen "${OUTBOX_CHANNEL}"`);
      this.listener = client;
    } catch (error) {
      this.logger.warn({event: "OUTBOX_LISTENER_FAILED", error_message: (error as Error).message});
      await client.end().catch(() => undefined);
      if (!this.stopped) setTimeout(() => void this.listen().catch(() => undefined), 2_000).unref();
    }
  }
}

/** The device and rule an alert event is about (silences match either). */
export function alertScope(body: EventBody): {deviceId: string | null; ruleId: string | null} {
  const data = body.data as {rule?: {id?: unknown}; alert?: {ruleId?: unknown}} | null;
  const ruleId = data?.rule?.id ?? data?.alert?.ruleId;
  return {deviceId: eventDeviceId(body), ruleId: typeof ruleId === "string" ? ruleId : null};
}

/** An `alert.fired` sent again when the silence that held it back ended (NotificationScan). */
function isAfterSilence(body: EventBody): boolean {
  return (body.data as {afterSilence?: unknown} | null)?.afterSilence === true;
}
