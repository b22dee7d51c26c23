import {Inject, Injectable} from "@tsed/common";
import {LRUCache} from "lru-cache";
import {ForbiddenError} from "../../common/errors.js";
import type {AuthUser} from "../../platform/auth/auth-user.js";
import {CALLER_CHECK, type CallerCheck} from "../../platform/tenancy/caller-check.js";
import type {User, UserSnapshot} from "./user.entity.js";
import {UserRepository} from "./user.repository.js";

/** How long a caller's user row is reused: a deletion reaches every instance within this (docs/api.md "Tenants and tokens": within 5 s). */
export const CALLER_USER_TTL_MS = 4_000;
const MAX_ENTRIES = 20_000;

/**
 * The users of the callers of this instance, by (tenant, subject), each as read at most
 * CALLER_USER_TTL_MS ago: every authenticated request needs its caller's row (to refuse a deleted
 * user on every route, and for GET /me), and a device or an app calls many times a minute, so most
 * requests cost no query. A deletion reaches every instance within the TTL, the deleting instance
 * at once (`forget`). A user that does not exist yet is remembered as such too, until created.
 */
@Injectable({type: CALLER_CHECK})
export class CallerUsers implements CallerCheck {
  @Inject()
  private users!: UserRepository;

  /** The least recently used go first past MAX_ENTRIES. */
  private readonly rows = new LRUCache<string, {row: UserSnapshot | null}>({max: MAX_ENTRIES, ttl: CALLER_USER_TTL_MS});

  async check(tenantId: string, user: AuthUser): Promise<void> {
    if ((await this.find(tenantId, user.subject))?.deletedAt) throw new ForbiddenError("This user has been deleted");
  }

  /** The caller's row, deleted or not (null when there is none yet), in the bound tenant. */
  async find(tenantId: string, subject: string): Promise<UserSnapshot | null> {
    const key = `${tenantId}\u0000${subject}`;
    const known = this.rows.get(key);
    if (known) return known.row;
    return this.remember(tenantId, subject, await this.users.findSnapshotBySubject(subject));
  }

  /** After this instance wrote the row (created it): the new row is the one to answer. */
  remember(tenantId: string, subject: string, user: User | UserSnapshot | null): UserSnapshot | null {
    const row = user && snapshot(user);
    const key = `${tenantId}\u0000${subject}`;
    this.rows.set(key, {row});
    return row;
  }

  /** After this instance deleted the user: no need to wait for the row to expire here. */
  forget(tenantId: string, subject: string): void {
    this.rows.delete(`${tenantId}\u0000${subject}`);
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
