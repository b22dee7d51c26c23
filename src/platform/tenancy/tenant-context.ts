import {RequestContext, TransactionContext} from "@mikro-orm/core";
import type {EntityManager} from "@mikro-orm/postgresql";
import {context, Injectable} from "@tsed/common";
import {madeFork, useSchema} from "../db/lazy-request-context.js";
import {DEFAULT_CONTEXT} from "../db/orm-contexts.js";
import type {AuthUser} from "../auth/auth-user.js";

const TENANT_KEY = "tenantId";
const USER_KEY = "authUser";

export class MissingTenantContextError extends Error {
  constructor() {
    super("No tenant is bound to this request: the route must be @Authenticated()");
    this.name = "MissingTenantContextError";
  }
}

/**
 * The tenant of the current request (or job) and the entity manager bound to its schema. Services
 * and repositories reach the database only through `em`, which refuses to work when no tenant is
 * bound: no code path can query "some" schema by forgetting the tenant.
 */
@Injectable()
export class TenantContext {
  /** Binds the current async context (request or job) to a tenant. */
  bind(tenantId: string, user?: AuthUser): void {
    const $ctx = context();
    if (!$ctx) throw new MissingTenantContextError();
    $ctx.set(TENANT_KEY, tenantId);
    if (user) $ctx.set(USER_KEY, user);
    // The request's entity manager is forked on the tenant's schema when something first uses it.
    useSchema(DEFAULT_CONTEXT, tenantId);
  }

  get tenantId(): string {
    const tenantId = context()?.get<string | undefined>(TENANT_KEY);
    if (!tenantId) throw new MissingTenantContextError();
    return tenantId;
  }

  get user(): AuthUser {
    const user = context()?.get<AuthUser | undefined>(USER_KEY);
    if (!user) throw new MissingTenantContextError();
    return user;
  }

  /** The request's (or the running transaction's) entity manager, on the tenant's schema. */
  get em(): EntityManager {
    const tenantId = this.tenantId;
    const em = this.requestEm().getContext(true);
    if (em.schema !== tenantId) throw new MissingTenantContextError();
    return em;
  }

  /**
   * Whether the current context runs in a transaction of its entity manager, told without forking
   * one: a statement that goes around the ORM (TenantAffineConnections) asks only this, and a
   * fork per request cost ~30 µs (bench:profile spread-single).
   */
  get inTransaction(): boolean {
    const em = TransactionContext.getEntityManager(DEFAULT_CONTEXT) ?? madeFork(RequestContext.currentRequestContext(), DEFAULT_CONTEXT);
    return em?.getTransactionContext() !== undefined;
  }

  private requestEm(): EntityManager {
    const em = RequestContext.getEntityManager(DEFAULT_CONTEXT) as EntityManager | undefined;
    if (!em) throw new MissingTenantContextError();
    return em;
  }
}
