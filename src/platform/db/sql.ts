import {createHash} from "node:crypto";
import {UniqueConstraintViolationException} from "@mikro-orm/core";
import type {EntityManager, Knex} from "@mikro-orm/postgresql";
import {LRUCache} from "lru-cache";
import pg from "pg";

/** Values of a statement's named parameters: `:deviceId` in the SQL takes `bindings.deviceId`. */
export type Bindings = Readonly<Record<string, unknown>>;

/**
 * Runs one SQL statement with bound, named parameters (`:name` placeholders, sent to Postgres as
 * `$n`; a cast reads `:name::uuid`) on the entity manager's connection, inside its transaction
 * when it has one, and returns the rows. Columns are aliased to the camelCase property names of
 * the row type in the SQL itself (`"device_id" as "deviceId"`), and timestamps arrive as Dates
 * (ROW_TYPES): the rows are the typed objects, with no mapping code. (Values inside JSON built by
 * the statement stay JSON: timestamps there are text.)
 *
 * MikroORM's `em.execute()` inlines parameters into the SQL text (escaped, but not bound) and
 * re-formats them on every call: every raw statement of the project goes through here instead.
 * Driver errors are converted to MikroORM's exceptions (`DeadlockException`,
 * `UniqueConstraintViolationException`, ...) exactly as the ORM's own queries would be, so the
 * RetryStrategy and the error filter see the same types.
 */
export async function queryRows<T>(em: EntityManager, sql: string, bindings: Bindings, options: QueryOptions = {}): Promise<T[]> {
  assertBindable(sql, bindings);
  const trx = em.getTransactionContext<Knex.Transaction>();
  const name = options.prepare ? preparedStatementName(sql) : undefined;
  try {
    return await runRaw<T>(em, sql, bindings, name, trx);
  } catch (error) {
    if (!(name && isStalePreparedPlan(error))) throw em.getDriver().convertException(error as Error);
    // A migration changed the type of a column it returns: prepared anew under another name on
    // every connection, and run again at once when no transaction was aborted by it (inside one,
    // the RetryStrategy runs the transaction again: retryReason).
    const renamed = renamePrepared(sql, name);
    if (trx) throw em.getDriver().convertException(error as Error);
    try {
      return await runRaw<T>(em, sql, bindings, renamed, undefined);
    } catch (again) {
      throw em.getDriver().convertException(again as Error);
    }
  }
}

async function runRaw<T>(
  em: EntityManager,
  sql: string,
  bindings: Bindings,
  name: string | undefined,
  trx: Knex.Transaction | undefined
): Promise<T[]> {
  const query = em.getKnex().raw(sql, valueDict(bindings));
  // knex hands `options` to pg's query config, where `name` makes it a prepared statement.
  query.options(name ? {name, types: ROW_TYPES} : {types: ROW_TYPES});
  if (trx) query.transacting(trx);
  const result = (await query) as {rows: T[]};
  return result.rows;
}

/**
 * Whether Postgres refused a prepared statement because the row type its plan returns changed
 * (a migration altered a column's type): it refuses it on every execution, on every connection
 * that prepared it, until it is prepared anew (renamePrepared). Raw or converted by the ORM.
 * Told from other 0A000 errors (feature_not_supported) by the routine that raises it, whatever
 * the server's language, or else by its English message: a wider test would name statements
 * anew on every call of one that always fails so, each new name another plan in every backend.
 */
export function isStalePreparedPlan(error: unknown): boolean {
  const {code, routine, message} = (error ?? {}) as {code?: unknown; routine?: unknown; message?: unknown};
  return (
    code === "0A000" &&
    (routine === "RevalidateCachedQuery" || (typeof message === "string" && message.includes("cached plan must not change result type")))
  );
}

/** Whether Postgres cancelled a statement that waited for a lock longer than its lock_timeout (lock_not_available), raw or converted by the ORM (MikroORM keeps the SQLSTATE in `code`). */
export function isLockTimeout(error: unknown): boolean {
  return (error as {code?: unknown} | null)?.code === "55P03";
}

/** A unique violation, as queryRows converts it (the ORM's exception) or as pg raised it (SQLSTATE 23505). */
export function isUniqueViolation(error: unknown): boolean {
  return error instanceof UniqueConstraintViolationException || (error as {code?: unknown} | null)?.code === "23505";
}

/**
 * The statement exactly as Postgres receives it (`$n` placeholders) and its parameter values:
 * what the committed snapshots under src/queries/ show, and what EXPLAIN is given.
 */
export function toNativeSql(knex: Knex, sql: string, bindings: Bindings): {sql: string; values: unknown[]} {
  assertBindable(sql, bindings);
  const native = knex.raw(sql, valueDict(bindings)).toSQL().toNative();
  return {sql: native.sql, values: [...native.bindings]};
}

/**
 * How raw rows read Postgres values: pg's defaults (timestamptz and timestamp become Dates, bigint
 * stays a string) except `date`, which stays `YYYY-MM-DD` text (a calendar day has no instant).
 * MikroORM's connection reads every temporal type as text for its own hydration; raw statements
 * override that per query.
 */
export const ROW_TYPES = new pg.TypeOverrides();
ROW_TYPES.setTypeParser(pg.types.builtins.DATE, (text: string) => text);

/**
 * Statement texts already checked: a statement that names a tenant schema is one text per tenant,
 * so the most recently used ones only (a text that fell out is checked again, a few µs).
 */
const checkedTexts = new LRUCache<string, true>({max: 1_000});

/**
 * knex's named bindings would also replace the type of a cast named like a binding
 * (`:date::date` binds both): such a statement is a programming error, caught on its first run.
 */
function assertBindable(sql: string, bindings: Bindings): void {
  if (checkedTexts.get(sql)) return;
  for (const name of Object.keys(bindings)) {
    if (new RegExp(`::${name}\\b`).test(sql))
      throw new Error(`SQL binding ":${name}" is also a cast (::${name}) in the statement: rename the binding`);
  }
  checkedTexts.set(sql, true);
}

/** knex leaves `:name` in the text when its value is `undefined`: an absent value is SQL NULL. */
function valueDict(bindings: Bindings): Knex.ValueDict {
  const values: Knex.ValueDict = {};
  for (const key in bindings) values[key] = (bindings[key] ?? null) as Knex.Value;
  return values;
}

export interface QueryOptions {
  /**
   * Run it as a named prepared statement: each pooled connection parses and plans it once and
   * then only binds and executes it. For the hot statements of ingestion, whose planning costs
   * Postgres more than their execution (≈0.7 ms of a 1.2 ms single-reading ingest, measured).
   */
  prepare?: boolean;
}

/**
 * How many distinct statements a process prepares. A prepared statement holds about 200 kB in
 * each Postgres backend that ran it, and statements that name a tenant schema are one per tenant:
 * past this bound, further ones run unprepared (correct, only slower), so backend memory stays
 * bounded however many tenants there are.
 */
export const MAX_PREPARED_STATEMENTS = 64;

const preparedNames = new Map<string, string>();

/** The statement's name, undefined once MAX_PREPARED_STATEMENTS are named. */
export function preparedStatementName(sql: string): string | undefined {
  const known = preparedNames.get(sql);
  if (known !== undefined || preparedNames.size >= MAX_PREPARED_STATEMENTS) return known;
  const name = statementName(sql);
  preparedNames.set(sql, name);
  return name;
}

/**
 * A prepared statement's name for a text: a digest of it, since pg refuses one name for two
 * texts, and Postgres truncates names at 63 bytes (so a tenant id in the name could collide).
 */
export function statementName(sql: string): string {
  return `st_${createHash("sha256").update(sql).digest("hex").slice(0, 40)}`;
}

/** Names given so far to texts prepared anew. */
let renames = 0;

/**
 * `name`, the prepared name of a text whose plan Postgres refused (isStalePreparedPlan), replaced
 * by a name new to every pooled connection, unless another call replaced it already: each
 * connection prepares the text afresh. The refused statement stays in each backend that prepared
 * it until its connection closes: at most MAX_PREPARED_STATEMENTS more per migration that retypes
 * what they return. (Not DEALLOCATE on each: the pool lends its connections one at a time, and pg
 * keeps its own record of the names it has parsed on each.)
 */
function renamePrepared(sql: string, name: string): string {
  const current = preparedNames.get(sql);
  if (current !== name) return current ?? name;
  const renamed = `${statementName(sql)}_${++renames}`;
  preparedNames.set(sql, renamed);
  return renamed;
}

/**
 * A Postgres array literal (`{21.5,NULL,22}`, `{"2026-03-28T10:30:00.000Z",…}`) to bind as one
 * parameter and cast in SQL (`?::float8[]`). `pg` would build the same text from a JS array, but
 * escapes element by element through several helper calls; for the 1,000-element arrays of a
 * batch this is a single join. Numbers must be finite; strings are quoted and escaped.
 */
export function pgArray(values: readonly (number | string | null | undefined)[]): string {
  let text = "{";
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i > 0) text += ",";
    if (value === null || value === undefined) text += "NULL";
    else if (typeof value === "number") {
      if (!Number.isFinite(value)) throw new RangeError(`Not a finite number: ${value}`);
      text += String(value);
    } else text += `"${value.replace(/[\\"]/g, "\\$&")}"`;
  }
  return `${text}}`;
}
