import type {MikroORM} from "@mikro-orm/postgresql";
import {Inject, Injectable, Logger} from "@tsed/common";
import {Orm} from "@tsed/mikro-orm";
import {ChangeFeed} from "../db/change-feed.js";
import {queryRows} from "../db/sql.js";
import {parseDeviceKey, sameDigest} from "./device-key.js";

/** Who a verified device key speaks for. */
export interface DeviceIdentity {
  keyId: string;
  tenantId: string;
  deviceId: string;
}

/** How often every instance asks which keys were revoked lately (the revocation feed). */
export const REVOCATION_POLL_MS = 1_000;
/**
 * Cached answers are trusted only while the feed answered this recently: past it (Postgres
 * unreachable, the event loop stalled) every verification reads the table again, so a revocation
 * never goes unseen for longer than the 5 s of docs/api.md "Devices as clients", whatever happens to the feed.
 */
export const REVOCATION_FRESHNESS_MS = 3_000;
/** Revoking transactions that commit this long after their `now()` are still seen by the feed. */
const REVOCATION_FEED_OVERLAP = "30 seconds";
/** A key's `lastUsedAt` is written at most this often (one UPDATE for all keys used meanwhile). */
export const LAST_USED_RESOLUTION_MS = 60_000;
/** Keys remembered per process (least recently used first out): ~200 bytes each. */
const MAX_CACHED_KEYS = 200_000;
/** A known key is read again after this long even when the feed said nothing about it. */
const KNOWN_TTL_MS = 10 * 60_000;
/** An unknown key id is answered from memory this long (key ids are random: nobody can use one before it exists). */
const UNKNOWN_TTL_MS = 10_000;

interface KeyRow {
  tenantId: string;
  deviceId: string;
  digest: Buffer;
  revoked: boolean;
}

interface CacheEntry {
  /** null: no such key. */
  row: KeyRow | null;
  expiresAt: number;
  /** When lastUsedAt was last queued for this key (ms). */
  touchedAt: number;
}

/** `public.device_keys` by key id: the platform-level lookup of a key's tenant and device. */
export const deviceKeyLookupSql = `select k."tenant_id" as "tenantId", k."device_id"::text as "deviceId", k."secret_sha256" as "digest", k."revoked_at" is not null as "revoked"
  from "public"."device_keys" k
 where k."id" = :keyId::uuid`;

/** The revocation feed: keys revoked since :since (minus an overlap), and the database's clock. */
export const revokedSinceSql = `select now() as "now",
       coalesce(array_agg(k."id"::text order by k."id"), '{}') as "changed",
       coalesce(array_agg(k."revoked_at"::text order by k."id"), '{}') as "stamps"
  from "public"."device_keys" k
 where k."revoked_at" >= :since::timestamptz - interval '${REVOCATION_FEED_OVERLAP}'`;

export const touchKeysSql = `update "public"."device_keys" set "last_used_at" = now() where "id" = any(:keyIds::uuid[]) and "revoked_at" is null`;

/**
 * Verifies device keys on every HTTP request and MQTT message of a device, cheaply:
 *
 * - A key is found by its id in `public.device_keys` (platform metadata: no tenant is known yet)
 *   and its SHA-256 compared in constant time. Answers are cached in the process, so a device
 *   posting every few seconds costs a hash and a map lookup, not a query.
 * - Revocation holds within seconds on every instance without a query per message: each process
 *   that verifies keys polls the revocation feed every REVOCATION_POLL_MS (one indexed query for
 *   the whole process, whatever the number of keys) and forgets or marks what was revoked; the
 *   listeners (the MQTT server) drop connections made with those keys at once. While the feed has
 *   not answered for REVOCATION_FRESHNESS_MS, nothing is answered from the cache.
 * - `lastUsedAt` is written at most once a minute per key, in one UPDATE per poll for every key
 *   used meanwhile (never an UPDATE per message).
 * The poll starts with the first verification, so processes that never verify (the worker, the
 * CLIs) never poll.
 */
@Injectable()
export class DeviceKeyVerifier {
  @Orm()
  private orm!: MikroORM;

  @Inject()
  private logger!: Logger;

  private readonly cache = new Map<string, CacheEntry>();
  private readonly loading = new Map<string, Promise<KeyRow | null>>();
  private readonly listeners = new Set<(keyIds: string[]) => void>();
  private touches = new Set<string>();
  private readonly feed = new ChangeFeed({
    event: "DEVICE_KEY",
    sql: revokedSinceSql,
    pollMs: REVOCATION_POLL_MS,
    freshnessMs: REVOCATION_FRESHNESS_MS,
    em: () => this.orm.em.fork(),
    logger: () => this.logger,
    whileFailing: "device keys are checked against Postgres until the feed answers again",
    onChanged: (keyIds) => this.markRevoked(keyIds),
    afterPoll: () => this.flushTouches()
  });

  /**
   * The device a key speaks for, or null for a malformed, unknown or revoked key.
   * @param expectedKeyId when the key id was also given apart from the key (MQTT's username), it must be this key's
   * @throws when Postgres cannot be asked (the caller answers 503, or refuses CONNECT as "server unavailable")
   */
  async verify(key: string, expectedKeyId?: string): Promise<DeviceIdentity | null> {
    const parsed = parseDeviceKey(key);
    if (!parsed || (expectedKeyId !== undefined && expectedKeyId.toLowerCase() !== parsed.keyId)) return null;
    const row = await this.row(parsed.keyId);
    if (!row || row.revoked || !sameDigest(row.digest, parsed.digest)) return null;
    return {keyId: parsed.keyId, tenantId: row.tenantId, deviceId: row.deviceId};
  }

  /** A key verified earlier is still active (not revoked): for every message of a long-lived MQTT connection. */
  async isActive(keyId: string): Promise<boolean> {
    const row = await this.row(keyId);
    return row !== null && !row.revoked;
  }

  /** Called with the ids of keys the feed found revoked (the MQTT server closes their connections). */
  onRevoked(listener: (keyIds: string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Forgets what this process knows of a key: the process that revoked it answers 401 at once. */
  forget(keyIds: readonly string[]): void {
    for (const keyId of keyIds) this.cache.delete(keyId);
    if (keyIds.length) this.notify([...keyIds]);
  }

  $onDestroy(): Promise<void> {
    this.feed.stop();
    return this.flushTouches();
  }

  private async row(keyId: string): Promise<KeyRow | null> {
    this.feed.start();
    const now = performance.now();
    const entry = this.cache.get(keyId);
    if (entry && entry.expiresAt > now && this.feed.isFresh(now)) {
      this.touch(keyId, entry, now);
      return entry.row;
    }
    let pending = this.loading.get(keyId);
    if (!pending) {
      pending = this.load(keyId).finally(() => this.loading.delete(keyId));
      this.loading.set(keyId, pending);
    }
    const row = await pending;
    const cached = this.cache.get(keyId);
    if (cached) this.touch(keyId, cached, now);
    return row;
  }

  private async load(keyId: string): Promise<KeyRow | null> {
    const startedAt = performance.now();
    const row = await this.readKey(keyId);
    const now = performance.now();
    this.cache.delete(keyId); // re-inserted last: the Map's order is least recently loaded first
    // A read the feed overtook may predate the revocation it named: answered, not kept.
    if (this.feed.changedSince(keyId, startedAt)) return row ?? null;
    this.cache.set(keyId, {row: row ?? null, expiresAt: now + (row ? KNOWN_TTL_MS : UNKNOWN_TTL_MS), touchedAt: Number.NEGATIVE_INFINITY});
    if (this.cache.size > MAX_CACHED_KEYS) this.cache.delete(this.cache.keys().next().value!);
    return row ?? null;
  }

  /** The key's row as Postgres has it now (a method of its own: the race property in device-keys.spec holds it mid-flight). */
  private async readKey(keyId: string): Promise<KeyRow | undefined> {
    const [row] = await queryRows<KeyRow>(this.orm.em.fork(), deviceKeyLookupSql, {keyId}, {prepare: true});
    return row;
  }

  private touch(keyId: string, entry: CacheEntry, now: number): void {
    if (!entry.row || entry.row.revoked || now - entry.touchedAt < LAST_USED_RESOLUTION_MS) return;
    entry.touchedAt = now;
    this.touches.add(keyId);
  }

  /** The feed's revoked keys that this process knew as active: marked, and their listeners told. */
  private markRevoked(keyIds: string[]): void {
    const revoked = keyIds.filter((keyId) => {
      const entry = this.cache.get(keyId);
      if (!entry?.row || entry.row.revoked) return false;
      entry.row = {...entry.row, revoked: true};
      return true;
    });
    if (revoked.length) this.notify(revoked);
  }

  private async flushTouches(): Promise<void> {
    if (this.touches.size === 0) return;
    const keyIds = [...this.touches];
    this.touches = new Set();
    try {
      await queryRows(this.orm.em.fork(), touchKeysSql, {keyIds: `{${keyIds.join(",")}}`});
    } catch (error) {
      this.logger.warn({event: "DEVICE_KEY_LAST_USED_FAILED", keys: keyIds.length, error_message: (error as Error)?.message});
    }
  }

  private notify(keyIds: string[]): void {
    for (const listener of this.listeners) {
      try {
        listener(keyIds);
      } catch (error) {
        this.logger.error({event: "DEVICE_KEY_REVOKED_LISTENER_FAILED", error_message: (error as Error)?.message});
      }
    }
  }
}
