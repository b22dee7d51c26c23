import {Inject, Injectable} from "@tsed/di";
import {ForbiddenError} from "../../common/errors.js";
import type {AuthUser} from "../../platform/auth/auth-user.js";
import {CALLER_CHECK, type CallerCheck} from "../../platform/tenancy/caller-check.js";
import {UserRepository} from "./user.repository.js";

/** How long an answer is reused: a deletion reaches every instance within this (DESIGN: 5 s). */
export const DELETED_USER_TTL_MS = 4_000;
const MAX_ENTRIES = 50_000;

/**
 * A user an admin has (soft-)deleted gets 403 on every route, whatever its token says. The answer
 * per (tenant, subject) is kept DELETED_USER_TTL_MS, so that most requests cost no query: every
 * instance sees a deletion within that time, the instance that deleted at once (`forget`).
 */
@Injectable({type: CALLER_CHECK})
export class DeletedUserCheck implements CallerCheck {
  @Inject()
  private users!: UserRepository;

  private readonly answers = new Map<string, {deleted: boolean; until: number}>();

  async check(tenantId: string, user: AuthUser): Promise<void> {
    const key = `${tenantId}\u0000${user.subject}`;
    const now = Date.now();
    let answer = this.answers.get(key);
    if (!answer || answer.until <= now) {
      answer = {deleted: await this.users.isDeleted(user.subject), until: now + DELETED_USER_TTL_MS};
      this.answers.delete(key);
      this.answers.set(key, answer);
      if (this.answers.size > MAX_ENTRIES) this.answers.delete(this.answers.keys().next().value!);
    }
    if (answer.deleted) throw new ForbiddenError("This user has been deleted");
  }

  /** After this instance deleted the user: no need to wait for the answer to expire here. */
  forget(tenantId: string, subject: string): void {
    this.answers.delete(`${tenantId}\u0000${subject}`);
  }
}
