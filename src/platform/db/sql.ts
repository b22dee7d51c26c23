import type {EntityManager, Knex} from "@mikro-orm/postgresql";

/**
 * Runs one SQL statement with bound parameters (`?` placeholders, sent to Postgres as `$n`) on the
 * entity manager's connection, inside its transaction when it has one, and returns the rows.
 *
 * MikroORM's `em.execute()` inlines parameters into the SQL text (escaped, but not bound) and
 * re-formats them on every call; set-based writes of 1,000 readings go through here instead.
 * Driver errors are converted to MikroORM's exceptions (`DeadlockException`,
 * `UniqueConstraintViolationException`, ...) exactly as the ORM's own queries would be, so the
 * RetryStrategy and the error filter see the same types.
 */
export async function queryRows<T>(em: EntityManager, sql: string, params: readonly unknown[]): Promise<T[]> {
  const query = em.getKnex().raw(sql, params as Knex.RawBinding[]);
  const trx = em.getTransactionContext<Knex.Transaction>();
  if (trx) query.transacting(trx);
  try {
    const result = (await query) as {rows: T[]};
    return result.rows;
  } catch (error) {
    throw em.getDriver().convertException(error as Error);
  }
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

/**
 * Postgres `timestamptz` text (`2026-03-28 10:30:00.123+00`) as a Date. The MikroORM connection
 * deliberately returns timestamps as strings; the ORM parses them for entities, raw rows need this.
 */
export function toDate(value: string | Date): Date;
export function toDate(value: string | Date | null): Date | null;
export function toDate(value: string | Date | null): Date | null {
  if (value === null || value instanceof Date) return value;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new Error(`Unexpected timestamp from Postgres: ${value}`);
  return date;
}
