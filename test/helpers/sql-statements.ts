import pg from "pg";
import {BACKEND_SQL} from "../../src/platform/db/tenant-affine-connections.js";

/**
 * The SQL every pg client of this process sends while `task` runs (both MikroORM contexts,
 * entity queries, raw and prepared statements alike: they all end in pg's Client.query). BEGIN,
 * COMMIT, ROLLBACK and savepoints are left out unless `transactionControl` is set, and so is the
 * query a tenant-affine connection opens with (BACKEND_SQL, when the task happens to open one), so
 * counts say how much work a request does, not how it is wrapped.
 */
export async function countStatements<T>(
  task: () => Promise<T>,
  options: {transactionControl?: boolean} = {}
): Promise<{result: T; statements: string[]}> {
  const statements: string[] = [];
  const proto = pg.Client.prototype as unknown as {query: (this: unknown, config: unknown, ...rest: unknown[]) => unknown};
  const original = proto.query;
  proto.query = function (config, ...rest) {
    const text = (typeof config === "string" ? config : String((config as {text?: unknown} | null)?.text ?? "")).trim();
    if (text !== BACKEND_SQL && (options.transactionControl || !TRANSACTION_CONTROL.test(text))) statements.push(text);
    return original.call(this, config, ...rest);
  };
  try {
    return {result: await task(), statements};
  } finally {
    proto.query = original;
  }
}

const TRANSACTION_CONTROL = /^(begin|start transaction|commit|rollback|savepoint|release savepoint)\b/i;

/**
 * The readings' INSERTs among `statements`, by text: "usual" with ON CONFLICT DO NOTHING, "fresh"
 * without (ReadingRepository.ingest for readings expected to be new).
 */
export function ingestInserts(statements: readonly string[]): ("usual" | "fresh")[] {
  return statements
    .filter((sql) => /insert into \S+\."temperature_readings"/i.test(sql))
    .map((sql) => (/on conflict \("device_id", "recorded_at"\) do nothing/i.test(sql) ? "usual" : "fresh"));
}
