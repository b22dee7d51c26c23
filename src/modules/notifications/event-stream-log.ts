import {Inject, Injectable} from "@tsed/common";
import type {ChainableCommander} from "ioredis";
import {AppConfig} from "../../config/app-config.js";
import {RedisClient} from "../../platform/cache/redis.provider.js";
import type {EventBody} from "../../platform/outbox/outbox.js";

/**
 * How far back `Last-Event-ID` can replay: entries older than this are trimmed as new ones are
 * added (XADD MINID ~, which trims whole nodes only, so at least this much stays).
 */
export const REPLAY_WINDOW_MS = 15 * 60_000;

/** An entry of a tenant's stream: its id (the SSE `id`) and what a client filters on. */
export interface StreamEntry {
  id: string;
  type: string;
  deviceId: string | null;
  body: string;
}

/** The device an event is about, for `?deviceId=` (alert events name it in `data.device` or `data.alert`). */
export function eventDeviceId(body: EventBody): string | null {
  const data = body.data as {device?: {id?: unknown}; alert?: {deviceId?: unknown}; deviceId?: unknown} | null;
  const id = data?.device?.id ?? data?.alert?.deviceId ?? data?.deviceId;
  return typeof id === "string" ? id : null;
}

/**
 * The per-tenant Redis Stream behind the live stream: the relay appends every committed event
 * (XADD, which gives ids that increase per tenant whoever appends), every instance reads new
 * entries from it (XREAD) and replays a reconnecting client's gap from it (XRANGE). It is shared
 * by all instances, so an event relayed by one reaches the streams of every other.
 */
@Injectable()
export class EventStreamLog {
  @Inject(RedisClient)
  private redis!: RedisClient;

  @Inject()
  private config!: AppConfig;

  key(tenantId: string): string {
    return `${this.config.queuePrefix}:events:${tenantId}`;
  }

  /** Queues the XADD of each event on `pipeline` (in order: their ids increase in this order). */
  append(pipeline: ChainableCommander, tenantId: string, events: readonly EventBody[], now = Date.now()): void {
    for (const event of events) {
      pipeline.xadd(
        this.key(tenantId),
        "MINID",
        "~",
        String(now - REPLAY_WINDOW_MS),
        "*",
        "type",
        event.type,
        "device",
        eventDeviceId(event) ?? "",
        "body",
        JSON.stringify(event)
      );
    }
  }

  /** Entries after `afterId`, oldest first. */
  async readAfter(tenantId: string, afterId: string, count = 1_000): Promise<StreamEntry[]> {
    const entries = await this.redis.xrange(this.key(tenantId), `(${afterId}`, "+", "COUNT", count);
    return entries.map(toEntry);
  }

  /** The id of the newest entry, `0-0` for an empty stream. */
  async lastId(tenantId: string): Promise<string> {
    const [newest] = await this.redis.xrevrange(this.key(tenantId), "+", "-", "COUNT", 1);
    return newest?.[0] ?? "0-0";
  }

  /**
   * Whether entries after `lastSeenId` may be gone (the client must reload over REST): it is older
   * than REPLAY_WINDOW_MS (ids start with their time in ms, and XADD trims by MINID, so nothing
   * younger is ever trimmed), or it is not an id this stream could have given (malformed, or ahead
   * of the newest id the stream generated: Redis lost its data). Redis 7.0's XINFO
   * `max-deleted-entry-id` would say more, but trimming does not update it.
   */
  async missedSince(tenantId: string, lastSeenId: string, now = Date.now()): Promise<boolean> {
    if (!/^\d{1,15}-\d{1,15}$/.test(lastSeenId)) return true;
    if (Number(lastSeenId.split("-")[0]) < now - REPLAY_WINDOW_MS) return true;
    const info = (await this.redis.call("XINFO", "STREAM", this.key(tenantId)).catch((error: Error) => {
      if (/no such key/i.test(error.message)) return null;
      throw error;
    })) as unknown[] | null;
    if (!info) return lastSeenId !== "0-0";
    const lastGenerated = String(info[info.indexOf("last-generated-id") + 1]);
    return compareIds(lastSeenId, lastGenerated) > 0;
  }
}

function toEntry([id, fields]: [string, string[]]): StreamEntry {
  const value = (name: string) => fields[fields.indexOf(name) + 1] ?? "";
  return {id, type: value("type"), deviceId: value("device") || null, body: value("body")};
}

/** Orders Redis stream ids (`ms-seq`). */
export function compareIds(a: string, b: string): number {
  // Both parts are below 2^53 (milliseconds since 1970, a sequence within one): plain numbers,
  // no BigInt (it runs for every client on every entry).
  const ad = a.indexOf("-");
  const bd = b.indexOf("-");
  const am = Number(a.slice(0, ad));
  const bm = Number(b.slice(0, bd));
  if (am !== bm) return am < bm ? -1 : 1;
  const as = Number(a.slice(ad + 1));
  const bs = Number(b.slice(bd + 1));
  return as === bs ? 0 : as < bs ? -1 : 1;
}
