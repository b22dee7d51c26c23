import {Migration} from "@mikro-orm/migrations";
import type pg from "pg";
import {quoteTenantSchema} from "../../platform/tenancy/tenant-id.js";

const COLUMNS = `"id", "device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at", "created_at"`;

/**
 * Converts `temperature_readings` of one tenant into a table range-partitioned by `recorded_at`,
 * one partition per UTC month, in place of the old one: same name, same columns, no row lost or
 * duplicated. Frozen SQL (the partition job of the readings feature manages partitions later; it
 * finds them by their bounds, not their names).
 *
 * The new table:
 * - primary key (device_id, recorded_at): the duplicate guard of ingestion and the order of the
 *   keyset history, as before. A key of a partitioned table must include the partition key, so
 *   `id` can no longer be the primary key; nothing looks a reading up by id (alerts keep it as a
 *   plain value, see below), so `id` has no index of its own any more: one index fewer to
 *   maintain per inserted reading. It is still assigned by the table's identity, continuing the
 *   old one, so ids stay unique and increasing.
 * - the BRIN index on recorded_at (the nightly aggregation's day scan), per partition.
 * - partitions: one per month from the month of the oldest reading (at most 60 months back; the
 *   month before the current one for an empty table) to three months ahead, plus
 *   `temperature_readings_older` FROM (MINVALUE) below them. So a reading of any accepted instant
 *   has a partition; there is no DEFAULT partition (its rows would have to be moved out before a
 *   month overlapping them could be created, and it forbids DETACH … CONCURRENTLY).
 * - `alerts.reading_id` loses its foreign key: a key referencing a partitioned table must include
 *   its partition key, and a referenced partition cannot be detached while rows reference it, so
 *   the retention would be blocked by old alerts. An alert keeps what it needs of the reading that
 *   opened it (firedAt = its recordedAt, temperatureCelsius), and (device_id, fired_at) is that
 *   reading's primary key while it is kept.
 *
 * How, depending on size:
 * - up to `onlineAboveRows` readings (a new tenant's empty table, small ones): inside the
 *   migration's transaction, under ACCESS EXCLUSIVE on the old table (writes wait ~1 s at most).
 * - larger: online, on a second connection, while the old table keeps taking writes. (1) The new
 *   table is created. (2) In one short transaction holding SHARE ROW EXCLUSIVE on the old table (no
 *   insert is in flight then): a statement trigger that copies every row inserted into the old
 *   table into the new one in the same transaction, a trigger refusing UPDATE/DELETE/TRUNCATE
 *   until the swap (readings are never changed; a change racing a batch copy could otherwise be
 *   lost), and the highest id at that moment in a progress table. (3) Every row up to that id is
 *   copied in id-range batches of `batchIds`, one transaction each, progress committed with each
 *   batch: an interrupted run resumes where it stopped. (4) Count and checksum of both tables are
 *   compared in one REPEATABLE READ snapshot (equal from then on, thanks to the trigger). Then,
 *   in the migration's transaction: ACCESS EXCLUSIVE on the old table (lock_timeout 5 s: if a
 *   long query holds it, the migration fails and the next run resumes), drop the old table,
 *   rename the new one. Ingestion waits only for that swap. Old application instances keep
 *   working throughout: their statements name the table, which is the new one after the swap.
 * Either way ids, values and created_at are copied as they are, and ON CONFLICT DO NOTHING makes
 * a repeated copy of a row a no-op (the primary key is the old unique key, so it cannot drop a row).
 */
export class Migration20261202000100_readings_partitioned extends Migration {
  /** Tables with more readings than this are converted online. Tests lower it to exercise that path. */
  static onlineAboveRows = 100_000;
  /** Ids per batch of the copy (each batch is one statement; online, one transaction). */
  static batchIds = 50_000;
  /** Months after the current one that get a partition now (the partition job keeps this up). */
  static readonly monthsAhead = 3;
  /** Months before the current one that get a partition of their own; older rows go to `_older`. */
  static readonly maxMonthsBack = 60;

  override async up(): Promise<void> {
    const s = quoteTenantSchema(this.config.get("schema"));
    const [state] = await this.execute(
      `select (select c."relkind"::text from pg_class c where c."oid" = to_regclass('${s}."temperature_readings"')) as "kind",
              to_regclass('${s}."temperature_readings_partitioned"') is not null as "started"`
    );
    // Converted by a run whose migration log was lost (it died between swap and log): nothing left to do.
    if (state?.kind === "p") return;
    const online = Boolean(state?.started) || (await this.hasMoreThan(s, Migration20261202000100_readings_partitioned.onlineAboveRows));
    if (online) {
      await this.withSecondConnection((db) => this.prepareOnline(s, db));
    } else {
      await this.execute(`set local lock_timeout = '5s'`);
      await this.execute(`lock table ${s}."temperature_readings" in access exclusive mode`);
      for (const sql of await this.createSql(s, (sql) => this.execute(sql))) await this.execute(sql);
      const {low, high} = await this.idRange(s, (sql) => this.execute(sql));
      await this.copy(s, low, high, (sql) => this.execute(sql));
      await this.verify(s, (sql) => this.execute(sql));
    }
    await this.swap(s);
  }

  override down(): void {
    throw new Error("Converting temperature_readings back to one table is not supported: restore from a backup");
  }

  private async hasMoreThan(s: string, limit: number): Promise<boolean> {
    const [row] = await this.execute(`select count(*)::int as "n" from (select 1 from ${s}."temperature_readings" limit ${limit + 1}) x`);
    return Number(row?.n) > limit;
  }

  /** The new table and its partitions, from the old table's range of recorded_at (read per device through its index). */
  private async createSql(s: string, query: Query): Promise<string[]> {
    const [range] = await query(
      `select (extract(epoch from min(x."lo")) * 1000)::float8 as "minMs", (extract(epoch from max(x."hi")) * 1000)::float8 as "maxMs"
         from ${s}."devices" d
         cross join lateral (select min(r."recorded_at") as "lo", max(r."recorded_at") as "hi" from ${s}."temperature_readings" r where r."device_id" = d."id") x`
    );
    const now = new Date();
    const current = monthOf(now);
    const earliest = addMonths(current, -Migration20261202000100_readings_partitioned.maxMonthsBack);
    const oldest = range?.minMs == null ? addMonths(current, -1) : monthOf(new Date(Number(range.minMs)));
    const first = oldest.getTime() < earliest.getTime() ? earliest : oldest;
    const newest = range?.maxMs == null ? current : monthOf(new Date(Number(range.maxMs)));
    const aheadEnd = addMonths(current, Migration20261202000100_readings_partitioned.monthsAhead + 1);
    const end = addMonths(newest, 1).getTime() > aheadEnd.getTime() ? addMonths(newest, 1) : aheadEnd;

    const table = `${s}."temperature_readings_partitioned"`;
    const sql = [
      `create table ${table} (
        "id" bigint generated by default as identity,
        "device_id" uuid not null,
        "temperature_celsius" double precision not null,
        "humidity" double precision null,
        "battery_level" double precision null,
        "recorded_at" timestamptz not null,
        "created_at" timestamptz not null default now(),
        constraint "temperature_readings_partitioned_pkey" primary key ("device_id", "recorded_at"),
        constraint "temperature_readings_temperature_range" check ("temperature_celsius" between -273.15 and 1000),
        constraint "temperature_readings_humidity_range" check ("humidity" between 0 and 100),
        constraint "temperature_readings_battery_range" check ("battery_level" between 0 and 1)
      ) partition by range ("recorded_at")`,
      `create index "temperature_readings_partitioned_recorded_at_brin" on ${table} using brin ("recorded_at") with (autosummarize = on)`,
      `create table ${s}."temperature_readings_older" partition of ${table} for values from (minvalue) to ('${first.toISOString()}')`
    ];
    for (let month = first; month.getTime() < end.getTime(); month = addMonths(month, 1)) {
      sql.push(
        `create table ${s}."${partitionName(month)}" partition of ${table} for values from ('${month.toISOString()}') to ('${addMonths(month, 1).toISOString()}')`
      );
    }
    return sql;
  }

  /** The ids to copy: (low, high]. */
  private async idRange(s: string, query: Query): Promise<{low: number; high: number}> {
    const [row] = await query(
      `select (coalesce(min("id"), 1) - 1)::text as "low", coalesce(max("id"), 0)::text as "high" from ${s}."temperature_readings"`
    );
    return {low: Number(row?.low ?? 0), high: Number(row?.high ?? 0)};
  }

  /** Copies the rows with id in (after, upTo], `batchIds` ids per statement; `onBatch` runs each. */
  private async copy(
    s: string,
    after: number,
    upTo: number,
    query: Query,
    onBatch?: (batch: () => Promise<void>, to: number) => Promise<void>
  ): Promise<void> {
    const step = Migration20261202000100_readings_partitioned.batchIds;
    for (let from = after; from < upTo; from += step) {
      const to = Math.min(from + step, upTo);
      const batch = async () => {
        await query(
          `insert into ${s}."temperature_readings_partitioned" (${COLUMNS})
           select ${COLUMNS} from ${s}."temperature_readings" where "id" > ${from} and "id" <= ${to}
           on conflict ("device_id", "recorded_at") do nothing`
        );
      };
      if (onBatch) await onBatch(batch, to);
      else await batch();
    }
  }

  /** Count and checksum of every column of every row, old and new table, in the caller's snapshot. */
  private async verify(s: string, query: Query): Promise<void> {
    const digest = (table: string) =>
      `select count(*)::text as "n", coalesce(sum(hashtextextended(concat_ws('|', "id", "device_id", "temperature_celsius", "humidity", "battery_level", "recorded_at", "created_at"), 0)::numeric), 0)::text as "sum" from ${s}."${table}"`;
    const [old] = await query(digest("temperature_readings"));
    const [copy] = await query(digest("temperature_readings_partitioned"));
    if (old?.n !== copy?.n || old?.sum !== copy?.sum) {
      throw new Error(
        `${s}: the partitioned copy of temperature_readings differs (rows ${String(old?.n)} → ${String(copy?.n)}, checksum ${String(old?.sum)} → ${String(copy?.sum)}); the old table is untouched`
      );
    }
  }

  /** Steps (1)–(4) of the online conversion, each resumable, on a connection of its own. */
  private async prepareOnline(s: string, db: pg.ClientBase): Promise<void> {
    const query: Query = async (sql) => (await db.query(sql)).rows;
    const inTransaction = async (task: () => Promise<void>, begin = "begin") => {
      await db.query(begin);
      try {
        await task();
        await db.query("commit");
      } catch (error) {
        await db.query("rollback");
        throw error;
      }
    };
    await db.query(`set statement_timeout = 0`);
    await db.query(`set lock_timeout = '5s'`);
    const [state] = await query(
      `select to_regclass('${s}."temperature_readings_partitioned"') is not null as "created", to_regclass('${s}."temperature_readings_conversion"') is not null as "mirrored"`
    );
    if (!state?.created) {
      await inTransaction(async () => {
        for (const sql of await this.createSql(s, query)) await db.query(sql);
      });
    }
    if (!state?.mirrored) {
      await inTransaction(async () => {
        // Waits for the inserts in flight and holds new ones back until the trigger exists: every
        // row is then either visible to the batches (id <= high) or copied by the trigger.
        await db.query(`lock table ${s}."temperature_readings" in share row exclusive mode`);
        await db.query(`create function ${s}."temperature_readings_conversion_mirror"() returns trigger language plpgsql as $body$
          begin
            insert into ${s}."temperature_readings_partitioned" (${COLUMNS}) select ${COLUMNS} from "inserted" on conflict ("device_id", "recorded_at") do nothing;
            return null;
          end $body$`);
        await db.query(`create trigger "temperature_readings_conversion_mirror" after insert on ${s}."temperature_readings"
          referencing new table as "inserted" for each statement execute function ${s}."temperature_readings_conversion_mirror"()`);
        await db.query(`create function ${s}."temperature_readings_conversion_frozen"() returns trigger language plpgsql as $body$
          begin
            raise exception 'temperature_readings is being converted to a partitioned table: % is refused until it is done', tg_op;
          end $body$`);
        await db.query(`create trigger "temperature_readings_conversion_frozen" before update or delete or truncate on ${s}."temperature_readings"
          for each statement execute function ${s}."temperature_readings_conversion_frozen"()`);
        await db.query(
          `create table ${s}."temperature_readings_conversion" as select coalesce(max("id"), 0) as "high", coalesce(min("id"), 1) - 1 as "done" from ${s}."temperature_readings"`
        );
      });
    }
    const [progress] = await query(`select "high"::text as "high", "done"::text as "done" from ${s}."temperature_readings_conversion"`);
    await this.copy(s, Number(progress?.done ?? 0), Number(progress?.high ?? 0), query, (batch, to) =>
      inTransaction(async () => {
        await batch();
        await db.query(`update ${s}."temperature_readings_conversion" set "done" = ${to}`);
      })
    );
    await inTransaction(() => this.verify(s, query), "begin isolation level repeatable read read only");
  }

  /** In the migration's transaction: the new table takes the old one's place. */
  private async swap(s: string): Promise<void> {
    await this.execute(`set local lock_timeout = '5s'`);
    await this.execute(`lock table ${s}."temperature_readings" in access exclusive mode`);
    const [mirror] = await this.execute(
      `select exists (select 1 from pg_trigger where tgrelid = '${s}."temperature_readings"'::regclass and tgname = 'temperature_readings_conversion_mirror' and tgenabled = 'O') as "active",
              to_regclass('${s}."temperature_readings_conversion"') is not null as "online"`
    );
    if (mirror?.online && !mirror.active)
      throw new Error(`${s}: the conversion's mirror trigger is missing or disabled; rows may be missing from the copy`);
    const [sequence] = await this.execute(
      `select pg_get_serial_sequence('${s}."temperature_readings"', 'id') as "old", pg_get_serial_sequence('${s}."temperature_readings_partitioned"', 'id') as "new"`
    );
    const [next] = await this.execute(
      `select greatest((select case when is_called then last_value + 1 else last_value end from ${String(sequence?.old)}), (select coalesce(max("id"), 0) + 1 from ${s}."temperature_readings"))::text as "id"`
    );
    await this.execute(`alter table ${s}."alerts" drop constraint if exists "alerts_reading_id_fkey"`);
    await this.execute(`drop table ${s}."temperature_readings"`);
    await this.execute(`drop function if exists ${s}."temperature_readings_conversion_mirror"()`);
    await this.execute(`drop function if exists ${s}."temperature_readings_conversion_frozen"()`);
    await this.execute(`drop table if exists ${s}."temperature_readings_conversion"`);
    await this.execute(`alter table ${s}."temperature_readings_partitioned" alter column "id" restart with ${Number(next?.id ?? 1)}`);
    await this.execute(`alter table ${s}."temperature_readings_partitioned" rename to "temperature_readings"`);
    await this.execute(
      `alter table ${s}."temperature_readings" rename constraint "temperature_readings_partitioned_pkey" to "temperature_readings_pkey"`
    );
    await this.execute(
      `alter index ${s}."temperature_readings_partitioned_recorded_at_brin" rename to "temperature_readings_recorded_at_brin"`
    );
    await this.execute(`alter sequence ${String(sequence?.new)} rename to "temperature_readings_id_seq"`);
    await this.execute(`set local lock_timeout to default`);
  }

  /**
   * A second connection of the migrator's pool: the migration's own holds its transaction (and,
   * with allOrNothing, the other pending migrations'), while the online steps commit as they go.
   */
  private async withSecondConnection(task: (db: pg.ClientBase) => Promise<void>): Promise<void> {
    const client = this.getKnex().client as {
      acquireConnection(): Promise<pg.ClientBase>;
      releaseConnection(connection: pg.ClientBase): Promise<void>;
    };
    const db = await client.acquireConnection();
    try {
      await task(db);
    } finally {
      await db.query("reset all").catch(() => undefined);
      await client.releaseConnection(db);
    }
  }
}

type Query = (sql: string) => Promise<Record<string, unknown>[]>;

function monthOf(instant: Date): Date {
  return new Date(Date.UTC(instant.getUTCFullYear(), instant.getUTCMonth(), 1));
}

function addMonths(month: Date, months: number): Date {
  return new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + months, 1));
}

function partitionName(month: Date): string {
  return `temperature_readings_${month.getUTCFullYear()}_${String(month.getUTCMonth() + 1).padStart(2, "0")}`;
}
