import {Inject, Injectable} from "@tsed/common";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {NOT_DELETED, User} from "./user.entity.js";

@Injectable()
export class UserRepository {
  @Inject()
  private tenant!: TenantContext;

  /** Includes soft-deleted users: a deleted user's token must not resurrect the account. */
  findBySubjectIncludingDeleted(subject: string) {
    return this.tenant.em.findOne(User, {subject}, {filters: {[NOT_DELETED]: false}});
  }

  /** Creates the user unless a concurrent request just did; returns the stored row either way. */
  async insertIfMissing(data: Pick<User, "subject" | "email" | "displayName">): Promise<User> {
    const em = this.tenant.em;
    const now = new Date();
    await em
      .createQueryBuilder(User)
      .insert({...data, id: crypto.randomUUID(), createdAt: now, updatedAt: now})
      .onConflict("subject")
      .ignore()
      .execute();
    return em.findOneOrFail(User, {subject: data.subject}, {filters: {[NOT_DELETED]: false}});
  }

  list(withDeleted: boolean) {
    return this.tenant.em.find(User, {}, {filters: {[NOT_DELETED]: !withDeleted}, orderBy: {createdAt: "asc", id: "asc"}, limit: 1000});
  }

  findById(id: string) {
    return this.tenant.em.findOne(User, {id});
  }

  async save(user: User): Promise<User> {
    await this.tenant.em.persistAndFlush(user);
    return user;
  }
}
