import type {AsyncLocalStorage} from "node:async_hooks";
import {type EntityManager, RequestContext} from "@mikro-orm/core";
import {MikroOrmContext} from "@tsed/mikro-orm";

/**
 * Where MikroORM keeps the current RequestContext: `RequestContext.create` would fork every
 * manager up front, so the context is entered here with a map of our own. (Typed private in
 * MikroORM 6.6's declarations, a public static field at runtime; the specs fail if that changes.)
 */
const requestContextStorage = (RequestContext as unknown as {storage: AsyncLocalStorage<RequestContext>}).storage;

/**
 * A request's forks of the ORMs' entity managers, each made the first time something asks for it
 * (MikroORM's RequestContext looks them up by context name in this map).
 */
class ForksOnFirstUse extends Map<string, EntityManager> {
  /** While a fork is being made, its own constructor looks the context up: it must find nothing yet. */
  private forking: string | undefined;
  /** The schema each context's fork works in (see useSchema), set on it when it is made. */
  readonly schemas = new Map<string, string>();

  constructor(private readonly managers: readonly EntityManager[]) {
    super();
  }

  override get(name: string): EntityManager | undefined {
    const made = super.get(name);
    if (made || this.forking === name) return made;
    const em = this.managers.find((manager) => manager.name === name);
    if (!em) return undefined;
    this.forking = name;
    try {
      // disableContextResolution: fork the ORM's own manager (resolving the context would come back here).
      const fork = em.fork({useContext: true, disableContextResolution: true, schema: this.schemas.get(name)});
      super.set(name, fork);
      return fork;
    } finally {
      this.forking = undefined;
    }
  }
}

/**
 * Makes the current request's (or job's) fork of ORM context `contextName` work in `schema`: at
 * once if it was made already, else when it is. Binding a request to its tenant's schema thus
 * costs no fork on a route that never reaches the database.
 */
export function useSchema(contextName: string, schema: string): void {
  const context = RequestContext.currentRequestContext();
  if (!context) throw new Error("useSchema outside a request or job context");
  if (context.map instanceof ForksOnFirstUse) context.map.schemas.set(contextName, schema);
  const made = madeFork(context, contextName);
  if (made) made.schema = schema;
}

/** The current request's (or job's) fork of ORM context `contextName` if something has made it; never makes it. */
export function madeFork(context: RequestContext | undefined, contextName: string): EntityManager | undefined {
  if (!context) return undefined;
  return context.map instanceof ForksOnFirstUse ? Map.prototype.get.call(context.map, contextName) : context.map.get(contextName);
}

/**
 * @tsed/mikro-orm runs every request (and job) in a MikroORM RequestContext holding a fork of each
 * ORM's entity manager, made up front: two forks per request, for the health probe and /metrics
 * as much as for a route that reads both databases. The same context with forks made on first use
 * costs a route that touches no database nothing, and one that reads only tenant data one fork.
 * Registered in place of MikroOrmContext (tsed.config.ts); RequestContext, its storage and the
 * lookup by name are MikroORM's own.
 */
export class LazyMikroOrmContext extends MikroOrmContext {
  override run(managers: EntityManager[], task: (...args: unknown[]) => unknown) {
    return requestContextStorage.run(new RequestContext(new ForksOnFirstUse(managers)), task) as Promise<unknown>;
  }
}
