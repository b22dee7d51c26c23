import type {MikroORM} from "@mikro-orm/postgresql";
import {queryRows} from "./sql.js";

/**
 * Runs `task` while holding a Postgres transaction-level advisory lock named `key`, so that
 * processes on any instance serialise on it (schema provisioning, startup migrations). The lock
 * lives in a transaction on one pooled connection and is released when it ends, crash included.
 * The wait is not bounded by DB_STATEMENT_TIMEOUT_MS: that budget is for request queries, and a
 * process starting while another migrates a big tenant must wait for it, not fail to start.
 */
export async function withAdvisoryLock<T>(orm: MikroORM, key: string, task: () => Promise<T>): Promise<T> {
  return orm.em.fork().transactional(async (tx) => {
    await queryRows(tx, `set local statement_timeout = 0`, {});
    await queryRows(tx, `select pg_advisory_xact_lock(hashtextextended(:key, 0))`, {key});
    return task();
  });
}
