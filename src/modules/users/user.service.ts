import {Inject, Injectable} from "@tsed/di";
import {ForbiddenError, NotFoundError} from "../../common/errors.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import type {User} from "./user.entity.js";
import {UserRepository} from "./user.repository.js";

@Injectable()
export class UserService {
  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private users!: UserRepository;

  /** The caller's user row, created from the token on first use. */
  async current(): Promise<User> {
    const {subject, email, name} = this.tenant.user;
    const user = (await this.users.findBySubjectIncludingDeleted(subject)) ?? (await this.users.insertIfMissing({subject, email: email ?? null, displayName: name ?? null}));
    if (user.deletedAt) throw new ForbiddenError("This user has been deleted");
    return user;
  }

  list(withDeleted: boolean) {
    return this.users.list(withDeleted);
  }

  /** GDPR deletion: the row stays for audit (and for the devices it owns) but leaves every query. */
  async softDelete(id: string): Promise<void> {
    const user = await this.users.findById(id);
    if (!user) throw new NotFoundError("User", id);
    user.deletedAt = new Date();
    await this.users.save(user);
  }
}
