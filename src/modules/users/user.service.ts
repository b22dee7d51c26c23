import {Inject, Injectable} from "@tsed/common";
import {ForbiddenError, NotFoundError} from "../../common/errors.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {CallerUsers} from "./caller-users.js";
import type {UserSnapshot} from "./user.entity.js";
import {UserRepository} from "./user.repository.js";

@Injectable()
export class UserService {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private users!: UserRepository;

  @Inject()
  private callers!: CallerUsers;

  /** The caller's user row (as of at most a few seconds ago: CallerUsers), created from the token on first use. */
  async current(): Promise<UserSnapshot> {
    const {tenantId} = this.tenant;
    const {subject, email, name} = this.tenant.user;
    const user =
      (await this.callers.find(tenantId, subject)) ??
      this.callers.remember(
        tenantId,
        subject,
        await this.users.insertIfMissing({subject, email: email ?? null, displayName: name ?? null})
      )!;
    if (user.deletedAt) throw new ForbiddenError("This user has been deleted");
    return user;
  }

  list(withDeleted: boolean) {
    return this.users.list(withDeleted);
  }

  /**
   * GDPR deletion: the row stays for audit (its id and subject, and the devices it owns), but its
   * e-mail and name are erased, it leaves every query, and its tokens get 403 on every route.
   */
  async softDelete(id: string): Promise<void> {
    const user = await this.users.findById(id);
    if (!user) throw new NotFoundError("User", id);
    user.deletedAt = new Date();
    user.email = null;
    user.displayName = null;
    await this.users.save(user);
    this.callers.forget(this.tenant.tenantId, user.subject);
  }
}
