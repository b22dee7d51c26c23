import type {MikroORM} from "@mikro-orm/postgresql";
import type pg from "pg";

/**
 * Runs `task` on one pooled connection of the ORM's pool, held for the whole task, outside any
 * transaction: for work that needs session state (a session advisory lock, `SET`) or statements
 * that refuse to run in a transaction block (`DETACH PARTITION … CONCURRENTLY`). Settings the task
 * changed with `SET` are reset before the connection goes back to the pool.
 */
export async function withDedicatedConnection<T>(orm: MikroORM, task: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  const knexClient = orm.em.getKnex().client as {
    acquireConnection(): Promise<pg.ClientBase>;
    releaseConnection(connection: pg.ClientBase): Promise<void>;
  };
  const client = await knexClient.acquireConnection();
  try {
    return await task(client);
  } finally {
    // A task that failed inside BEGIN … must not hand an aborted transaction to the next user.
    await client.query("rollback").catch(() => undefined);
    await client.query("reset all").catch(() => undefined);
    await knexClient.releaseConnection(client);
  }
}

/**
 * Runs `task` while holding the session advisory lock `key` (the same lock space as the
 * transaction-level locks of withAdvisoryLock, so the two exclude each other); undefined without
 * running it when another session holds the lock.
 */
export async function tryWithSessionLock<T>(
  client: pg.ClientBase,
  key: string,
  task: () => Promise<T>
): Promise<{ran: true; result: T} | {ran: false}> {
  const {rows} = await client.query<{locked: boolean}>(`select pg_try_advisory_lock(hashtextextended($1, 0)) as "locked"`, [key]);
  if (!rows[0]?.locked) return {ran: false};
  try {
    return {ran: true, result: await task()};
  } finally {
    await client.query(`select pg_advisory_unlock(hashtextextended($1, 0))`, [key]);
  }
}
