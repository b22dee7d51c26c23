import type {MikroORM} from "@mikro-orm/postgresql";
import {Inject, Injectable, Logger} from "@tsed/common";
import {Orm} from "@tsed/mikro-orm";
import {LRUCache} from "lru-cache";
import {ForbiddenError} from "../../common/errors.js";
import type {AuthUser} from "../../platform/auth/auth-user.js";
import {ChangeFeed} from "../../platform/db/change-feed.js";
import {CALLER_CHECK, type CallerCheck} from "../../platform/tenancy/caller-check.js";
import type {User, UserSnapshot} from "./user.entity.js";
import {UserRepository} from "./user.repository.js";

/** How often every instance asks which users changed lately (the users' change feed). */
export const USER_FEED_POLL_MS = 1_000;
/**
 * Cached rows are trusted for long only while the feed answered this recently; past it (Postgres
 * unreachable, the event loop stalled) a row is reused CALLER_USER_TTL_MS at most, so a deletion
 * reaches every instance within docs/api.md's 5 s ("Tenants and tokens") whatever the feed does.
 */
export const USER_FEED_FRESHNESS_MS = 3_000;
/** How long a caller's row is reused while the feed does not answer. */
export const CALLER_USER_TTL_MS = 4_000;
/** How long a caller's row is reused while the feed answers (and says nothing of it). */
export const CALLER_USER_MAX_AGE_MS = 10 * 60_000;
const MAX_ENTRIES = 20_000;
/** Writes whose statement ran this long before their commit are still seen by the feed. */
const USER_FEED_OVERLAP = "30 seconds";

/** The users' change feed: `tenant:subject` of the users written since :since (minus an overlap), and the database's clock. */
export const usersChangedSinceSql = `select now() as "now",
       coalesce(array_agg(c."tenant_id" || ':' || c."subject" order by c."tenant_id", c."subject"), '{}') as "changed",
       coalesce(array_agg(c."changed_at"::text order by c."tenant_id", c."subject"), '{}') as "stamps"
  from "public"."user_changes" c
 where c."changed_at" >= :since::timestamptz - interval '${USER_FEED_OVERLAP}'`;

interface CachedCaller {
  /** null: no such user yet. */
  row: UserSnapshot | null;
  /** performance.now() when it was read. */
  readAt: number;
}

/**
 * The users of the callers of this instance, by (tenant, subject): every authenticated request
 * needs its caller's row (to refuse a deleted user on every route, and for GET /me), and a device
 * or an app calls many times a minute, so most requests cost no query. A row is reused for
 * minutes, and forgotten as soon as the users' change feed names it (a deletion, an update or a
 * creation on any instance, or by hand in SQL: a trigger feeds it), so a fleet spread over many
 * tenants does not re-read each caller every few seconds. The deleting instance forgets at once
 * (`forget`). A user that does not exist yet is remembered as such too, until created.
 */
@Injectable({type: CALLER_CHECK})
export class CallerUsers implements CallerCheck {
  @Inject()
  private users!: UserRepository;

  @Orm()
  private orm!: MikroORM;

  @Inject()
  private logger!: Logger;

  /** The least recently used go first past MAX_ENTRIES. Keys are `tenant:subject` (a tenant id has no ':'). */
  private readonly rows = new LRUCache<string, CachedCaller>({max: MAX_ENTRIES, ttl: CALLER_USER_MAX_AGE_MS});
  private readonly feed = new ChangeFeed({
    event: "USER",
    sql: usersChangedSinceSql,
    pollMs: USER_FEED_POLL_MS,
    freshnessMs: USER_FEED_FRESHNESS_MS,
    em: () => this.orm.em.fork(),
    logger: () => this.logger,
    whileFailing: `callers' user rows are read again every ${CALLER_USER_TTL_MS} ms until the feed answers again`,
    onChanged: (keys) => keys.forEach((key) => this.rows.delete(key))
  });

  async check(tenantId: string, user: AuthUser): Promise<void> {
    if ((await this.find(tenantId, user.subject))?.deletedAt) throw new ForbiddenError("This user has been deleted");
  }

  /** The caller's row, deleted or not (null when there is none yet), in the bound tenant. */
  async find(tenantId: string, subject: string): Promise<UserSnapshot | null> {
    this.feed.start();
    const key = `${tenantId}:${subject}`;
    const known = this.rows.get(key);
    const readAt = performance.now();
    if (known && (readAt - known.readAt < CALLER_USER_TTL_MS || this.feed.isFresh(readAt))) return known.row;
    const user = await this.users.findSnapshotBySubject(subject);
    // A read the feed overtook may predate the change it named: answered, not kept.
    if (this.feed.changedSince(key, readAt)) return user && snapshot(user);
    return this.remember(tenantId, subject, user, readAt);
  }

  /** After this instance wrote the row (created it): the new row is the one to answer. */
  remember(tenantId: string, subject: string, user: User | UserSnapshot | null, readAt = performance.now()): UserSnapshot | null {
    const row = user && snapshot(user);
    this.rows.set(`${tenantId}:${subject}`, {row, readAt});
    return row;
  }

  /** After this instance deleted the user: no need to wait for the feed here. */
  forget(tenantId: string, subject: string): void {
    this.rows.delete(`${tenantId}:${subject}`);
  }

  $onDestroy(): void {
    this.feed.stop();
  }
}

function snapshot(user: User | UserSnapshot): UserSnapshot {
  const {id, subject, email, displayName, deletedAt, createdAt, updatedAt} = user;
  return Object.freeze({
    id,
    subject,
    email: email ?? null,
    displayName: displayName ?? null,
    deletedAt: deletedAt ?? null,
    createdAt,
    updatedAt
  });
}
