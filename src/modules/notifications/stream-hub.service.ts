import {randomUUID} from "node:crypto";
import type {ServerResponse} from "node:http";
import {Inject, Injectable, Logger} from "@tsed/common";
import type {Redis} from "ioredis";
import {ServiceUnavailableError, TooManyRequestsError} from "../../common/errors.js";
import {AppConfig} from "../../config/app-config.js";
import {RedisClient} from "../../platform/cache/redis.provider.js";
import {compareIds, EventStreamLog, type StreamEntry} from "./event-stream-log.js";
import {matchesEventTypes} from "./webhook-event-types.js";

/**
 * A client's slot in the per-tenant count expires unless renewed by a ping (every STREAM_PING_S,
 * a comment line that keeps proxies from closing an idle stream): an instance that died frees its
 * slots after this many ping periods.
 */
const SLOT_LEASE_PINGS = 3;
/** A client that leaves this much unread in its socket's buffer has stopped reading: it is disconnected. */
export const MAX_UNREAD_BYTES = 256 * 1024;
const READ_BLOCK_MS = 5_000;

export interface StreamFilter {
  deviceId?: string;
  /** Event types or `prefix.*` patterns; every type when absent. */
  types?: string[];
}

interface Client {
  id: string;
  tenantId: string;
  filter: StreamFilter;
  res: ServerResponse;
  /** Entries up to this id were sent (or deliberately skipped). */
  lastSentId: string;
  /** While the replay runs, live entries wait here. */
  pending: StreamEntry[] | null;
}

/**
 * Takes a tenant's slot: drops expired ones, refuses beyond the cap, else adds ours. Atomic in
 * Redis, so instances count together.
 */
const TAKE_SLOT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`;

/**
 * The live streams of this instance. One reader connection (XREAD BLOCK over the stream logs of
 * every tenant with a client here) fans entries out to the clients; each client first gets what
 * it missed (Last-Event-ID) from the log, while live entries wait, so it sees every entry once,
 * in order. Clients per tenant are capped across instances (STREAM_MAX_PER_TENANT).
 */
@Injectable()
export class StreamHub {
  @Inject(RedisClient)
  private redis!: RedisClient;

  @Inject()
  private log!: EventStreamLog;

  @Inject()
  private config!: AppConfig;

  @Inject()
  private logger!: Logger;

  private readonly instanceId = randomUUID();
  private readonly clients = new Map<string, Set<Client>>();
  /** Per tenant with clients: the id the reader has read up to. */
  private readonly readFrom = new Map<string, string>();
  private reader: Redis | undefined;
  private readerId: number | undefined;
  private reading = false;
  private pinger: NodeJS.Timeout | undefined;

  $onDestroy() {
    clearInterval(this.pinger);
    for (const set of this.clients.values()) for (const client of set) client.res.end();
    this.reader?.disconnect();
  }

  /** Clients connected to this instance (for tests and metrics). */
  count(tenantId: string): number {
    return this.clients.get(tenantId)?.size ?? 0;
  }

  /**
   * Serves one stream on `res` until the client leaves: 429 beyond the cap, 503 without Redis;
   * otherwise `retry:`, the replay after `lastEventId` (or `event: reset` when it is too old), then
   * live entries and pings.
   */
  async serve(tenantId: string, filter: StreamFilter, lastEventId: string | undefined, res: ServerResponse): Promise<void> {
    const client: Client = {id: randomUUID(), tenantId, filter, res, lastSentId: "0-0", pending: []};
    await this.takeSlot(client);
    const closed = new Promise<void>((resolve) => res.once("close", resolve));
    try {
      res.writeHead(200, {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-store",
        Connection: "keep-alive",
        "X-Accel-Buffering": "no"
      });
      res.write("retry: 5000\n\n");
      await this.attach(client);
      await this.catchUp(client, lastEventId);
      await closed;
    } catch (error) {
      this.logger.warn({event: "STREAM_FAILED", tenantId, error_message: (error as Error).message});
      res.destroy();
    } finally {
      this.detach(client);
      await this.redis.zrem(this.slotKey(tenantId), `${this.instanceId}:${client.id}`).catch(() => undefined);
    }
  }

  private async takeSlot(client: Client): Promise<void> {
    const now = Date.now();
    let taken: number;
    try {
      taken = (await this.redis.eval(
        TAKE_SLOT,
        1,
        this.slotKey(client.tenantId),
        now,
        this.config.stream.maxPerTenant,
        now + this.slotLeaseMs,
        `${this.instanceId}:${client.id}`,
        this.slotLeaseMs
      )) as number;
    } catch {
      throw new ServiceUnavailableError("The live stream is unavailable (Redis): retry later");
    }
    if (!taken) throw new TooManyRequestsError(`At most ${this.config.stream.maxPerTenant} live streams per tenant`, 30);
  }

  private async attach(client: Client): Promise<void> {
    let set = this.clients.get(client.tenantId);
    if (!set) {
      set = new Set();
      this.clients.set(client.tenantId, set);
      this.readFrom.set(client.tenantId, await this.log.lastId(client.tenantId));
      // Wake the reader so that it reads this tenant's log too.
      if (this.readerId !== undefined) await this.redis.client("UNBLOCK", this.readerId).catch(() => undefined);
    }
    set.add(client);
    this.pinger ??= setInterval(() => this.ping(), this.config.stream.pingMs);
    this.pinger.unref();
    void this.read();
  }

  private async catchUp(client: Client, lastEventId: string | undefined): Promise<void> {
    const {tenantId} = client;
    if (lastEventId !== undefined && (await this.log.missedSince(tenantId, lastEventId))) {
      // Too far back (or not an id of this stream): the client reloads over REST, then goes live.
      client.lastSentId = await this.log.lastId(tenantId);
      this.write(client, `event: reset\ndata: {"reason":"Last-Event-ID is older than the replay buffer"}\n\n`);
    } else if (lastEventId !== undefined) {
      client.lastSentId = lastEventId;
      for (;;) {
        const missed = await this.log.readAfter(tenantId, client.lastSentId);
        for (const entry of missed) this.send(client, entry);
        if (missed.length < 1_000) break;
      }
    } else {
      client.lastSentId = await this.log.lastId(tenantId);
    }
    const waiting = client.pending ?? [];
    client.pending = null;
    for (const entry of waiting) this.send(client, entry);
  }

  private detach(client: Client): void {
    const set = this.clients.get(client.tenantId);
    set?.delete(client);
    if (set && !set.size) {
      this.clients.delete(client.tenantId);
      this.readFrom.delete(client.tenantId);
    }
  }

  private dispatch(tenantId: string, entry: StreamEntry): void {
    for (const client of this.clients.get(tenantId) ?? []) {
      // Most clients watch one device: skip the others' entries before anything costs more than a
      // string comparison (bench:stream: a thousand dashboards cost the ingest a third of its rate).
      if (client.filter.deviceId && entry.deviceId !== client.filter.deviceId) continue;
      if (client.pending) client.pending.push(entry);
      else this.send(client, entry);
    }
  }

  private send(client: Client, entry: StreamEntry): void {
    if (compareIds(entry.id, client.lastSentId) <= 0) return;
    client.lastSentId = entry.id;
    const {deviceId, types} = client.filter;
    if (deviceId && entry.deviceId !== deviceId) return;
    if (types && !matchesEventTypes(types, entry.type)) return;
    this.write(client, `id: ${entry.id}\nevent: ${entry.type}\ndata: ${entry.body}\n\n`);
  }

  /** Writes, or disconnects a client that has stopped reading (its unread bytes pile up in our memory). */
  private write(client: Client, text: string): void {
    if (client.res.destroyed) return;
    if (client.res.writableLength > MAX_UNREAD_BYTES) {
      this.logger.warn({event: "STREAM_SLOW_CLIENT_DROPPED", tenantId: client.tenantId, unreadBytes: client.res.writableLength});
      client.res.destroy();
      return;
    }
    client.res.write(text);
  }

  private ping(): void {
    const now = Date.now();
    for (const [tenantId, set] of this.clients) {
      const renewals: (string | number)[] = [];
      for (const client of set) {
        this.write(client, ": ping\n\n");
        renewals.push(now + this.slotLeaseMs, `${this.instanceId}:${client.id}`);
      }
      // The key's expiry too: it was set when the tenant's last slot was taken, and the renewed slots would vanish with it.
      if (renewals.length)
        void this.redis
          .multi()
          .zadd(this.slotKey(tenantId), ...renewals)
          .pexpire(this.slotKey(tenantId), this.slotLeaseMs)
          .exec()
          .catch(() => undefined);
    }
    if (!this.clients.size) {
      clearInterval(this.pinger);
      this.pinger = undefined;
    }
  }

  /** The reader loop: runs while some tenant has a client here. */
  private async read(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      if (!this.reader) {
        // Its own connection: XREAD BLOCK holds it, and the app's client fails commands fast.
        this.reader = this.redis.duplicate({
          connectionName: "smart-thermo-stream-reader",
          commandTimeout: undefined,
          enableOfflineQueue: true
        });
        this.reader.on("error", () => undefined);
        this.readerId = Number(await this.reader.client("ID"));
      }
      while (this.readFrom.size) {
        const tenants = [...this.readFrom.keys()];
        let result: [string, [string, string[]][]][] | null;
        try {
          result = await this.reader.xread(
            "COUNT",
            1_000,
            "BLOCK",
            READ_BLOCK_MS,
            "STREAMS",
            ...tenants.map((t) => this.log.key(t)),
            ...tenants.map((t) => this.readFrom.get(t)!)
          );
        } catch (error) {
          this.logger.warn({event: "STREAM_READ_FAILED", error_message: (error as Error).message});
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          continue;
        }
        for (const [key, entries] of result ?? []) {
          const tenantId = tenants[tenants.findIndex((t) => this.log.key(t) === key)];
          if (!tenantId || !this.readFrom.has(tenantId)) continue;
          for (const [id, fields] of entries) {
            const value = (name: string) => fields[fields.indexOf(name) + 1] ?? "";
            this.readFrom.set(tenantId, id);
            this.dispatch(tenantId, {id, type: value("type"), deviceId: value("device") || null, body: value("body")});
          }
        }
      }
    } finally {
      this.reading = false;
    }
    // A tenant attached while the loop was leaving would otherwise wait for nobody.
    if (this.readFrom.size) void this.read();
  }

  private get slotLeaseMs(): number {
    return SLOT_LEASE_PINGS * this.config.stream.pingMs;
  }

  private slotKey(tenantId: string): string {
    return `${this.config.queuePrefix}:stream-slots:${tenantId}`;
  }
}
