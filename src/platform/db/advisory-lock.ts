import type {MikroORM} from "@mikro-orm/postgresql";
import {queryRows} from "./sql.js";

/**
 * Runs `task` while holding a Postgres transaction-level advisory lock named `key`, so that
 * processes on any instance serialise on it (schema provisioning, startup migrations). The lock
 * lives in a transaction on one pooled connection and is released when it ends, crash included.
 */
export async function withAdvisoryLock<T>(orm: MikroORM, key: string, task: () => Promise<T>): Promise<T> {
  return orm.em.fork().transactional(async (tx) => {
    await queryRows(tx, `select pg_advisory_xact_lock(hashtextextended(:key, 0))`, {key});
    return task();
  });
}
