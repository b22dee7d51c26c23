import {Inject, Injectable} from "@tsed/common";
import {queryRows} from "../../platform/db/sql.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";
import {NOT_DELETED, User, type UserSnapshot} from "./user.entity.js";

/** A caller's row by subject, deleted or not, as plain data (CallerUsers re-reads it every few seconds per caller). */
export const userBySubjectSql = (schema: string) => `select u."id", u."subject", u."email", u."display_name" as "displayName",
       u."deleted_at" as "deletedAt", u."created_at" as "createdAt", u."updated_at" as "updatedAt"
  from ${schema}."users" u
 where u."subject" = :subject`;

@Injectable()
export class UserRepository {
  @Inject()
  private tenant!: TenantContext;

  /**
   * Includes soft-deleted users: a deleted user's token must not resurrect the account. Plain
   * data, by one statement: a fleet spread over many tenants re-reads its callers' rows at every
   * expiry of CallerUsers' cache, and the ORM's findOne cost the API 5-10 times the CPU of the
   * statement (bench:profile spread-single).
   */
  async findSnapshotBySubject(subject: string): Promise<UserSnapshot | null> {
    const [row] = await queryRows<UserSnapshot>(this.tenant.em, userBySubjectSql(quoteTenantSchema(this.tenant.tenantId)), {subject});
    return row ?? null;
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
