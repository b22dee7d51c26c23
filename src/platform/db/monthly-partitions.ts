import type pg from "pg";

/** One partition of a range-partitioned table, bounds as instants (null: MINVALUE / MAXVALUE). */
export interface RangePartition {
  name: string;
  from: Date | null;
  to: Date | null;
  /** A `DETACH … CONCURRENTLY` was interrupted: it must be finalized. Rows are no longer routed to it. */
  detachPending: boolean;
}

/** The first instant of the UTC month of `instant`. */
export function monthStart(instant: Date): Date {
  return new Date(Date.UTC(instant.getUTCFullYear(), instant.getUTCMonth(), 1));
}

export function addMonths(month: Date, months: number): Date {
  return new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + months, 1));
}

/** `temperature_readings_2026_03` for March 2026 (UTC). */
export function monthlyPartitionName(table: string, month: Date): string {
  return `${table}_${month.getUTCFullYear()}_${String(month.getUTCMonth() + 1).padStart(2, "0")}`;
}

/** The name of the partition below the first monthly one (FROM MINVALUE): rows older than every month. */
export const olderPartitionName = (table: string) => `${table}_older`;

const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;

/** Attaching waits at most this long for its lock (only other DDL holds a conflicting one); the next run tries again. */
const ATTACH_LOCK_TIMEOUT = "5s";
/**
 * Detaching concurrently waits for every query that may still see the partition (a long export,
 * say), blocking nobody meanwhile. Past this it gives up, leaving the detach pending: no row is
 * routed to the partition any more, and the next run finalizes it.
 */
const DETACH_LOCK_TIMEOUT = "60s";

/**
 * Monthly range partitions (UTC months) of a table partitioned by a timestamptz column, managed
 * on one connection outside any transaction (DETACH … CONCURRENTLY refuses to run in one). The
 * caller serialises runs per table (a session advisory lock); each step is idempotent, so a run
 * that was cut off anywhere is completed by the next one.
 *
 * Lock levels (Postgres 14+), chosen so that ingestion and reads never wait behind this:
 * - a new month is `CREATE TABLE … (LIKE parent)` then `ATTACH PARTITION`: SHARE UPDATE EXCLUSIVE
 *   on the parent, which INSERT and SELECT do not conflict with. (`CREATE TABLE … PARTITION OF`
 *   would take ACCESS EXCLUSIVE on the parent: it waits behind any running query, e.g. an export,
 *   and every insert queues behind it meanwhile.)
 * - an expired month is `DETACH PARTITION … CONCURRENTLY` (SHARE UPDATE EXCLUSIVE; it waits for
 *   the queries that may still see the partition, blocking none), then `DROP TABLE` of what is
 *   now a table of its own that no query can reach. Dropping a partition is unlinking its files:
 *   no row-by-row DELETE, no dead tuples, no vacuum debt.
 */
export class MonthlyPartitions {
  private readonly parent: string;

  constructor(
    private readonly db: pg.ClientBase,
    private readonly schema: string,
    private readonly table: string
  ) {
    this.parent = `${quote(schema)}.${quote(table)}`;
  }

  /** The table exists and is partitioned (a tenant whose conversion migration has not run yet is not). */
  async isPartitioned(): Promise<boolean> {
    const {rows} = await this.db.query<{kind: string | null}>(
      `select c."relkind"::text as "kind" from pg_class c where c."oid" = to_regclass($1)`,
      [this.parent]
    );
    return rows[0]?.kind === "p";
  }

  /** Attached partitions (and those pending detach), oldest first. */
  async list(): Promise<RangePartition[]> {
    const {rows} = await this.db.query<{name: string; fromMs: number | null; toMs: number | null; detachPending: boolean}>(
      `with "bounds" as (
         select c."relname" as "name", i."inhdetachpending" as "detachPending",
                regexp_match(pg_get_expr(c."relpartbound", c."oid"), '^FOR VALUES FROM \\((.*)\\) TO \\((.*)\\)$') as "b"
           from pg_inherits i join pg_class c on c."oid" = i."inhrelid"
          where i."inhparent" = $1::regclass and c."relkind" in ('r', 'p')
       )
       select "name", "detachPending",
              case when "b"[1] = 'MINVALUE' then null else (extract(epoch from trim(both '''' from "b"[1])::timestamptz) * 1000)::float8 end as "fromMs",
              case when "b"[2] = 'MAXVALUE' then null else (extract(epoch from trim(both '''' from "b"[2])::timestamptz) * 1000)::float8 end as "toMs"
         from "bounds"`,
      [this.parent]
    );
    const at = (ms: number | null) => (ms === null ? null : new Date(Number(ms)));
    return rows
      .map((row) => ({name: row.name, from: at(row.fromMs), to: at(row.toMs), detachPending: row.detachPending}))
      .sort((a, b) => (a.from?.getTime() ?? -Infinity) - (b.from?.getTime() ?? -Infinity));
  }

  /**
   * Creates the missing months after the newest partition, up to (excluding) the month of
   * `until`; with no partition at all, from the month of `firstMonth`. Never creates months before
   * existing partitions (those rows belong to the older partition, or are past the retention).
   * @returns the names of the partitions created
   */
  async ensureUntil(until: Date, firstMonth: Date): Promise<string[]> {
    const partitions = (await this.list()).filter((p) => !p.detachPending);
    if (partitions.some((p) => p.to === null)) return [];
    const newest = partitions.reduce<Date | null>((max, p) => (max === null || p.to!.getTime() > max.getTime() ? p.to : max), null);
    const end = monthStart(until);
    const created: string[] = [];
    for (let start = newest ?? monthStart(firstMonth); start.getTime() < end.getTime();) {
      const next = addMonths(monthStart(start), 1);
      const name = monthlyPartitionName(this.table, monthStart(start));
      await this.inTransaction(async () => {
        await this.db.query(`set local lock_timeout = '${ATTACH_LOCK_TIMEOUT}'`);
        await this.db.query(
          `create table ${quote(this.schema)}.${quote(name)} (like ${this.parent} including defaults including constraints including storage including comments)`
        );
        await this.db.query(
          `alter table ${this.parent} attach partition ${quote(this.schema)}.${quote(name)} for values from ('${start.toISOString()}') to ('${next.toISOString()}')`
        );
      });
      created.push(name);
      start = next;
    }
    return created;
  }

  /**
   * Detaches and drops every partition that ends at or before `cutoff` (its rows are all older),
   * the MINVALUE one included; finishes what an interrupted run left (a detach pending, a
   * detached table not yet dropped). Partitions reaching past `cutoff` are kept whole.
   * @returns the names of the tables dropped
   */
  async dropEndingBy(cutoff: Date): Promise<string[]> {
    const dropped: string[] = [];
    const partitions = await this.list();
    for (const partition of partitions) {
      const expired = partition.to !== null && partition.to.getTime() <= cutoff.getTime();
      if (!expired && !partition.detachPending) continue;
      const target = `${quote(this.schema)}.${quote(partition.name)}`;
      await this.db.query(`set lock_timeout = '${DETACH_LOCK_TIMEOUT}'`);
      await this.db.query(`set statement_timeout = 0`);
      await this.db.query(`alter table ${this.parent} detach partition ${target} ${partition.detachPending ? "finalize" : "concurrently"}`);
      if (!expired) continue; // a pending detach of a partition that is not expired cannot come from us; finalized, kept as a table
      await this.db.query(`reset statement_timeout`);
      await this.db.query(`drop table ${target}`);
      dropped.push(partition.name);
    }
    for (const name of await this.detachedLeftovers(cutoff)) {
      await this.db.query(`drop table ${quote(this.schema)}.${quote(name)}`);
      dropped.push(name);
    }
    return dropped;
  }

  /**
   * Tables named like this table's partitions that are no partition any more, and whose month has
   * expired: a run detached them and stopped before DROP. Only the retention detaches partitions.
   */
  private async detachedLeftovers(cutoff: Date): Promise<string[]> {
    const {rows} = await this.db.query<{name: string}>(
      `select c."relname" as "name" from pg_class c join pg_namespace n on n."oid" = c."relnamespace"
        where n."nspname" = $1 and c."relkind" = 'r' and not c."relispartition" and c."relname" ~ $2`,
      [this.schema, `^${this.table}_(\\d{4}_\\d{2}|older)$`]
    );
    return rows
      .map((row) => row.name)
      .filter((name) => {
        const month = /_(\d{4})_(\d{2})$/.exec(name);
        if (!month) return name === olderPartitionName(this.table);
        return addMonths(new Date(Date.UTC(Number(month[1]), Number(month[2]) - 1, 1)), 1).getTime() <= cutoff.getTime();
      });
  }

  private async inTransaction(task: () => Promise<void>): Promise<void> {
    await this.db.query("begin");
    try {
      await task();
      await this.db.query("commit");
    } catch (error) {
      await this.db.query("rollback");
      throw error;
    }
  }
}
