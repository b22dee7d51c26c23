import {Socket} from "node:net";
import type {Duplex} from "node:stream";
import {Inject, Injectable} from "@tsed/common";
import {Orm} from "@tsed/mikro-orm";
import type {MikroORM} from "@mikro-orm/postgresql";
import {LRUCache} from "lru-cache";
import pg from "pg";
import {ServiceUnavailableError} from "../../common/errors.js";
import {AppConfig} from "../../config/app-config.js";
import {GroupCommitLanes} from "../async/group-commit-lanes.js";
import {type Backend, withLostBackend} from "./lost-connection.js";
import {type Bindings, isLockTimeout, isStalePreparedPlan, type QueryOptions, ROW_TYPES, statementName, toNativeSql} from "./sql.js";

/** How the ingest connections show in pg_stat_activity. */
export const TENANT_AFFINE_APPLICATION_NAME = "smart-thermo-ingest";

/** How the read connections show in pg_stat_activity. */
export const TENANT_READS_APPLICATION_NAME = "smart-thermo-reads";

/** The two sets of connections: the group ingest statement's, and GET latest's. */
type ConnectionKind = "ingest" | "reads";

/** An open connection and the statements prepared on its backend. */
interface Connection {
  client: pg.Client;
  /** Names of the statements prepared on it; past its kind's budget, further texts run unprepared. */
  prepared: Set<string>;
  /** Its kind's budget of prepared statements. */
  budget: number;
  /** Takes it out of its slot: the next statement opens a new one. */
  forget: () => void;
  /** Its TCP socket (under TLS, the one TLS runs over): what a drop resets. */
  socket: Socket;
  /** The backend serving it. */
  backend: Backend;
  /** Statements sent on it and not answered yet (pipelined: each is answered after those before it). */
  inFlight: number;
  /** Dropped: failed, or given up for want of an answer. */
  dropped: boolean;
  /** Retired: closed once its statements in flight are answered, for a plan Postgres refused (retire). */
  retired: boolean;
}

/** One of the connections: open, being opened, or to be opened by the next statement. */
interface Slot {
  connection?: Promise<Connection>;
}

/** A statement's text as Postgres takes it (`$n`), its named parameters in that order, and its prepared-statement name. */
interface NativeText {
  text: string;
  order: string[];
  name: string;
}

/** A statement for one tenant's connection. */
interface Statement {
  tenantId: string;
  native: NativeText;
  values: unknown[];
  prepare: boolean;
}

/** A statement's own outcome within its group: a failing neighbour does not fail it. */
type Outcome = {rows: pg.QueryResultRow[]} | {error: unknown};

/** How long opening a connection may take, its backend's query included; then 503. */
const CONNECT_TIMEOUT_MS = 5_000;

/** The backend of a new connection, so that a write on it whose outcome is lost can wait for it to end (withLostBackend). */
export const BACKEND_SQL = `select pg_backend_pid() as "pid", backend_start::text as "startedAt" from pg_stat_activity where pid = pg_backend_pid()`;

/** Statements one transaction of a connection carries at most. */
const MAX_STATEMENTS_PER_TRANSACTION = 64;

/**
 * Beyond what Postgres may spend on the statements ahead of a statement and on it (each cut off by
 * DB_STATEMENT_TIMEOUT_MS), how long its answer may take to come back before the connection is
 * taken for dead (answerDeadlineMs). Also the least idle_in_transaction_session_timeout of these
 * connections: a group's BEGIN and COMMIT are sent together, so only a stalled network leaves one
 * idle in its transaction, and not for a retransmission's fraction of a second.
 */
export const ANSWER_GRACE_MS = 5_000;

/** The longest delay setTimeout keeps (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A connection idle this long gets its first TCP keepalive probe. */
const KEEPALIVE_IDLE_MS = 30_000;

/**
 * How long a statement's answer may take, counted from when it is sent, with `ahead` statements
 * sent on its connection before it and not answered yet: Postgres runs them one after the other,
 * each within the statement timeout, and then this one. A server slow within its timeouts (a
 * statement waiting for a lock up to its timeout) never reaches it; one stalled past them (a
 * paused host, a disk that stopped) is taken for dead like a silent network, and a write lost so
 * is repaired only once its backend has ended (DirtyDaysRepository.endBackends).
 */
export function answerDeadlineMs(statementTimeoutMs: number, ahead: number): number {
  return Math.min((ahead + 1) * statementTimeoutMs + ANSWER_GRACE_MS, MAX_TIMER_MS);
}

/**
 * A few connections of their own (DB_INGEST_CONNECTIONS) for the group ingest statement — an
 * autocommitted statement that names a tenant schema — with each tenant always sent to the same
 * connection (a hash of its id), and the statements that meet on a connection committed together;
 * and a few more (DB_READ_CONNECTIONS) for GET latest's read, each tenant's again on one of them.
 *
 * Why (docs/scaling.md, "Many tenants on one machine"):
 * - **Plans.** A statement that names a schema is one text per tenant, and Postgres plans a text
 *   anew on every connection that has not prepared it. On the ORM's pool, whichever connection is
 *   free takes the statement, so spread over hundreds of tenants every backend sees every tenant:
 *   its statement is planned again and again (a plan costs more than running the statement for one
 *   reading) and every backend caches every tenant's catalog entries. Pinned here, each backend
 *   serves a fixed share of the tenants, prepares their statement once and reuses it, and holds 1/n
 *   of the catalog cache. (One schema-independent text with `SET search_path` does not do this:
 *   Postgres re-plans a cached plan whenever the search_path differs from the one it was planned
 *   under.)
 * - **Commits.** Group commit (ReadingService) shares one statement among the requests of one
 *   tenant only, since a statement writes one schema; spread over many tenants, each request paid
 *   its own commit, and a commit waits for its WAL flush. Here the statements of the tenants that
 *   share a connection, arriving while its previous transaction runs, go in the next one: `BEGIN`,
 *   the statements, `COMMIT`, written at once in pg's pipeline mode — one round trip and one WAL
 *   flush for all of them (GroupCommitLanes, one lane per connection). Ordered by tenant, so two
 *   processes' transactions take their locks in one order. When one of them fails, the
 *   transaction is rolled back and each statement runs again alone, so each gets its own result or
 *   error, as if it had never been grouped. When the connection is lost under it, every statement
 *   fails alike: whether the transaction committed is unknown.
 * - **Reads.** GET latest, the read dashboards poll most, is planned once per tenant on its read
 *   connection too: its generic plan (the partitions chosen when it runs) costs Postgres 10–25 µs a
 *   call, where planning it costs 230 µs for one tenant's text and 550 µs when every call names
 *   another tenant. On connections of their own, not the ingest ones: a read there would wait
 *   behind a write of its connection that waits for a lock (a rule being edited), and would share
 *   the ingest statements' budget. A read needs no transaction: it is sent at once, pipelined
 *   behind the connection's other reads.
 *
 * Each ingest connection prepares at most DB_INGEST_PREPARED_PER_CONNECTION texts (a prepared
 * ingest statement holds about 0.6 MB of its backend), each read connection
 * DB_READS_PREPARED_PER_CONNECTION (about 90 kB each); further tenants' statements on that
 * connection run unprepared — correct, only slower. A connection that fails, or stops answering
 * (answerDeadlineMs), is dropped with what it had in flight (converted as the ORM's errors are:
 * unavailable, 503; a write whose COMMIT was lost in flight may have committed, and its retry is
 * answered as duplicates, so ReadingService has its days recomputed: mayHaveCommitted) and the next
 * statement opens a new one. An ingest statement waits for a lock (a rule being edited, or the
 * device's episode-changing transaction, holds its rules) at most DB_INGEST_LOCK_TIMEOUT_MS, since
 * every later statement of its connection, whatever its tenant, waits as long behind it; then it
 * fails (isLockTimeout) and its caller runs it on the ORM's pool, where waiting holds nobody else up.
 *
 * By hand rather than through a pool: a pool lends a connection to one user at a time, so it can
 * neither pipeline several users' statements nor choose a connection by key.
 */
@Injectable()
export class TenantAffineConnections {
  @Inject()
  private config!: AppConfig;

  /**
   * The ORM's own entity manager, for what every fork shares: knex (to convert a text's named
   * parameters) and the driver (to convert errors). A statement here needs no request's fork.
   */
  @Orm()
  private orm!: MikroORM;

  /** The connections of each kind, created on first use. */
  private readonly slots: Partial<Record<ConnectionKind, Slot[]>> = {};

  /**
   * The texts seen lately, as Postgres takes them: converting the named parameters (knex) and
   * naming the text (a digest) cost 50–100 µs for the ingest statement, which a load spread over
   * many tenants paid on every request. Room for every text the connections may keep prepared: a
   * round-robin load over more texts than an LRU holds never hits it (ingest and reads of 1,000
   * tenants are 2,000 texts). Created on first use, once the config is injected.
   */
  private natives?: LRUCache<string, NativeText>;

  /** Whether ingest statements go through here (DB_INGEST_CONNECTIONS > 0) or through the ORM's pool. */
  get enabled(): boolean {
    return this.config.db.ingestConnections > 0;
  }

  /** Whether reads go through here (DB_READ_CONNECTIONS > 0) or through the ORM's pool. */
  get readsEnabled(): boolean {
    return this.config.db.readConnections > 0;
  }

  /** One lane per connection: what arrives while its transaction runs goes in the next one. */
  private readonly transactions = new GroupCommitLanes<Statement, Outcome>(
    (slot, statements) => this.commitTogether(Number(slot), statements),
    {
      windowMs: 0,
      maxSize: MAX_STATEMENTS_PER_TRANSACTION,
      metricName: "ingest_transaction"
    }
  );

  /**
   * Runs one statement with bound, named parameters on the tenant's connection, committed with
   * whatever else meets it there, and returns its rows as `queryRows` would: the same placeholders,
   * row types and errors (converted by the ORM's driver into MikroORM's exceptions, for the
   * RetryStrategy and the error filter). Prepared (`options.prepare`, the default) while the
   * connection's budget lasts.
   * @throws ServiceUnavailableError when the tenant's connection cannot be opened within 5 s
   * @throws DriverException with code 55P03 (isLockTimeout) when it waited for a lock longer than
   *   DB_INGEST_LOCK_TIMEOUT_MS: it did nothing; run it on the ORM's pool
   */
  async queryRows<T>(tenantId: string, sql: string, bindings: Bindings, options: QueryOptions = {prepare: true}): Promise<T[]> {
    const statement = this.statementOf(tenantId, sql, bindings, options);
    const slot = this.slotOf(tenantId, this.config.db.ingestConnections);
    return this.rowsOf<T>(await this.transactions.submit(String(slot), statement));
  }

  /**
   * Runs a read-only statement on the tenant's read connection, at once (no transaction, nothing
   * to wait for but the reads sent before it), and returns its rows as `queryRows` does.
   * @throws ServiceUnavailableError when the tenant's connection cannot be opened within 5 s
   */
  async readRows<T>(tenantId: string, sql: string, bindings: Bindings, options: QueryOptions = {prepare: true}): Promise<T[]> {
    const statement = this.statementOf(tenantId, sql, bindings, options);
    const slots = this.slotsOf("reads");
    return this.rowsOf<T>(await this.runOnSlot(slots[this.slotOf(tenantId, slots.length)]!, "reads", statement));
  }

  private statementOf(tenantId: string, sql: string, bindings: Bindings, options: QueryOptions): Statement {
    const native = this.nativeOf(sql, bindings);
    return {tenantId, native, values: native.order.map((key) => bindings[key] ?? null), prepare: options.prepare ?? false};
  }

  private rowsOf<T>(outcome: Outcome): T[] {
    if ("error" in outcome)
      throw outcome.error instanceof ServiceUnavailableError
        ? outcome.error
        : this.orm.em.getDriver().convertException(outcome.error as Error);
    return outcome.rows as T[];
  }

  /** Flushes what is waiting; closes the connections once their statements have finished. */
  async $onDestroy(): Promise<void> {
    await this.transactions.flush();
    const slots = [...(this.slots.ingest ?? []), ...(this.slots.reads ?? [])];
    this.slots.ingest = this.slots.reads = undefined;
    await Promise.all(
      slots.map(async (slot) => {
        const connection = await slot.connection?.catch(() => undefined);
        slot.connection = undefined;
        // end() lets the statements already sent finish first.
        await connection?.client.end().catch(() => undefined);
      })
    );
  }

  /** The index of the tenant's connection among `count`. */
  private slotOf(tenantId: string, count: number): number {
    return spreadHash(tenantId) % count;
  }

  /** How many texts the connections of a kind may keep prepared in all. */
  private mostPrepared(kind: ConnectionKind): number {
    const {connections, budget} = this.settingsOf(kind);
    return connections * budget;
  }

  private slotsOf(kind: ConnectionKind): Slot[] {
    return (this.slots[kind] ??= Array.from({length: this.settingsOf(kind).connections}, () => ({})));
  }

  /** What sets the two kinds of connection apart. */
  private settingsOf(kind: ConnectionKind): {connections: number; budget: number; applicationName: string} {
    const {ingestConnections, ingestPreparedPerConnection, readConnections, readsPreparedPerConnection} = this.config.db;
    return kind === "ingest"
      ? {connections: ingestConnections, budget: ingestPreparedPerConnection, applicationName: TENANT_AFFINE_APPLICATION_NAME}
      : {connections: readConnections, budget: readsPreparedPerConnection, applicationName: TENANT_READS_APPLICATION_NAME};
  }

  /**
   * A connection's next transaction: its statements pipelined between BEGIN and COMMIT (a lone
   * statement without them); after a statement's failure, each statement again on its own.
   */
  private async commitTogether(index: number, statements: Statement[]): Promise<Outcome[]> {
    let connection: Connection;
    try {
      connection = await this.connectionOf(this.slotsOf("ingest")[index]!, "ingest");
    } catch (error) {
      return statements.map(() => ({error}));
    }
    if (statements.length === 1) return this.runAlone(index, statements);
    const tenantOf = (i: number) => statements[i]!.tenantId;
    const order = statements.map((_, i) => i).sort((a, b) => (tenantOf(a) < tenantOf(b) ? -1 : tenantOf(a) > tenantOf(b) ? 1 : a - b));
    // All written now, in pipeline mode: one round trip, and one write to the socket (pg corks each
    // statement's messages; corked around the lot, BEGIN, the statements and COMMIT go out together).
    const socket = socketOf(connection);
    socket.cork();
    let begin: Promise<Outcome>, pending: Promise<Outcome>[], commit: Promise<Outcome>;
    try {
      begin = this.run(connection, "begin");
      pending = order.map((i) => this.run(connection, statements[i]!));
      commit = this.run(connection, "commit");
    } finally {
      socket.uncork();
    }
    const outcomes: Outcome[] = new Array(statements.length);
    const settled = await Promise.all(pending);
    order.forEach((i, k) => (outcomes[i] = settled[k]!));
    const [begun, committed] = await Promise.all([begin, commit]);
    if ("error" in begun || "error" in committed || settled.some((outcome) => "error" in outcome)) {
      // The connection was lost: whether the transaction committed is unknown, for every statement
      // of it, those answered before too. Each fails with the COMMIT's error (which names the lost
      // backend); run again alone on a dead connection, they would fail as never sent.
      if (connection.dropped) {
        const lost = [committed, begun, ...settled].find((outcome) => "error" in outcome)!;
        return statements.map(() => lost);
      }
      // A statement failed (the rest then failed as "transaction aborted", and COMMIT rolled back):
      // each again alone, but one that gave up waiting for a lock, which would wait again in front
      // of the others: its caller runs it elsewhere (DB_INGEST_LOCK_TIMEOUT_MS).
      const gaveUp = (outcome: Outcome) => "error" in outcome && isLockTimeout(outcome.error);
      const alone = await this.runAlone(
        index,
        statements.filter((_, i) => !gaveUp(outcomes[i]!))
      );
      return outcomes.map((outcome) => (gaveUp(outcome) ? outcome : alone.shift()!));
    }
    return outcomes;
  }

  /** Each statement autocommitted on its own (pipelined still), on the slot's connection: its own result or error. */
  private runAlone(index: number, statements: Statement[]): Promise<Outcome[]> {
    const slot = this.slotsOf("ingest")[index]!;
    return Promise.all(statements.map((statement) => this.runOnSlot(slot, "ingest", statement)));
  }

  /**
   * A statement outside a transaction, on the slot's connection. One whose prepared plan Postgres
   * refused did nothing, and its connection was retired for it (run): it runs again on the slot's
   * next connection, where nothing is prepared yet.
   */
  private async runOnSlot(slot: Slot, kind: ConnectionKind, statement: Statement): Promise<Outcome> {
    const once = async (): Promise<Outcome> => {
      try {
        return await this.run(await this.connectionOf(slot, kind), statement);
      } catch (error) {
        return {error};
      }
    };
    const outcome = await once();
    return "error" in outcome && isStalePreparedPlan(outcome.error) ? once() : outcome;
  }

  private async run(
    connection: Connection,
    statement: Statement | string,
    deadlineMs = answerDeadlineMs(this.config.db.statementTimeoutMs, connection.inFlight)
  ): Promise<Outcome> {
    // Without a deadline, a connection whose answers stop coming (the network partitioned, the
    // database's host gone) would hold its statements, and every later one of its tenants, until
    // TCP gives up a quarter of an hour later. Past it the connection is dropped: all it had in
    // flight fails (503) and the next statement opens a new one. The first unanswered statement's
    // deadline is the tightest. (Not pg's query_timeout: it closes the socket gracefully, and the
    // kernel would go on sending what was unsent, to run whenever the network heals.)
    const deadline = setTimeout(() => this.drop(connection), deadlineMs);
    connection.inFlight++;
    let name: string | undefined;
    try {
      if (typeof statement === "string") return {rows: (await connection.client.query(statement)).rows};
      name = statement.prepare ? this.nameOn(connection, statement.native.name) : undefined;
      const result = await connection.client.query({
        text: statement.native.text,
        values: statement.values,
        ...(name ? {name} : {}),
        types: ROW_TYPES
      });
      return {rows: result.rows};
    } catch (error) {
      if (name && isStalePreparedPlan(error)) this.retire(connection);
      // The connection failed, or Postgres is ending it (admin shutdown, crash recovery): the next statement opens another.
      if (!(error instanceof pg.DatabaseError) || /^(57P|08)/.test(error.code ?? "")) this.drop(connection);
      // Its backend may not know yet, and may still commit what it received: the DailyStats
      // repair of a write that failed so waits until that backend has ended (DirtyDaysRepository).
      return {error: connection.dropped ? withLostBackend(error, connection.backend) : error};
    } finally {
      clearTimeout(deadline);
      connection.inFlight--;
    }
  }

  /** The slot's open connection, opening it first when it has none. */
  private connectionOf(slot: Slot, kind: ConnectionKind): Promise<Connection> {
    if (slot.connection) return slot.connection;
    const {budget, applicationName} = this.settingsOf(kind);
    let socket: Socket | undefined;
    const client = new pg.Client({
      connectionString: this.config.databaseUrl,
      // Made here to be kept: under TLS, pg's stream is the TLS socket, which cannot be reset.
      stream: () => (socket = new Socket()),
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      application_name: applicationName,
      statement_timeout: this.config.db.statementTimeoutMs,
      // A prepared statement's generic plan at once, not after five custom plans (each 1–2 ms,
      // against 0.05 ms to reuse the generic one); it was measured as fast as the custom plans
      // for 1 and for 1,000 readings.
      // And a transaction whose COMMIT never comes (its connection dropped, the reset lost in a
      // partition) is rolled back by Postgres, not left holding its row locks for hours.
      options:
        `-c plan_cache_mode=force_generic_plan -c idle_in_transaction_session_timeout=${Math.max(this.config.db.statementTimeoutMs, ANSWER_GRACE_MS)}` +
        (kind === "ingest" ? ` -c lock_timeout=${this.config.db.ingestLockTimeoutMs}` : ""),
      pipeline: true,
      // These connections live as long as the process: probes keep them through idle spells (a
      // firewall or NAT that forgets idle flows would cut them silently) and, minutes later, tell
      // an idle connection whose peer is gone.
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS
    });
    const opening: Promise<Connection> = client
      .connect()
      .then(async () => {
        const connection: Connection = {
          client,
          socket: socket!,
          backend: {pid: 0, startedAt: ""},
          prepared: new Set(),
          budget,
          forget,
          inFlight: 0,
          dropped: false,
          retired: false
        };
        const outcome = await this.run(connection, BACKEND_SQL, CONNECT_TIMEOUT_MS);
        if ("error" in outcome) throw outcome.error;
        connection.backend = outcome.rows[0] as Backend;
        return connection;
      })
      .catch((error: unknown) => {
        if (slot.connection === opening) slot.connection = undefined;
        void client.end().catch(() => undefined);
        throw new ServiceUnavailableError("The database is unreachable; retry later", 5, {cause: error});
      });
    // A connection that dies (Postgres restarted, the backend terminated) must not crash the process.
    const forget = () => {
      if (slot.connection === opening) slot.connection = undefined;
    };
    client.on("error", forget);
    client.on("end", forget);
    slot.connection = opening;
    return opening;
  }

  private drop(connection: Connection): void {
    if (connection.dropped) return;
    connection.dropped = true;
    connection.forget();
    // Resets the socket: whatever else was in flight on it fails now rather than hangs, and what
    // the kernel had not sent yet is discarded instead of delivered later.
    try {
      connection.socket.resetAndDestroy();
    } catch {
      // Not TCP (a Unix socket, to a Postgres on this host: nothing in between to hold bytes back).
      connection.socket.destroy();
    }
  }

  /**
   * Postgres refused a statement prepared on this connection because a migration retyped a column
   * it returns (isStalePreparedPlan), and will refuse it, and likely the other tenants' statements
   * prepared here, on every execution. The next statement opens a new connection, where each is
   * prepared afresh; this one is closed once what it has in flight is answered. (Rather than
   * DEALLOCATE and pg's record of parsed names edited under pipelined statements; or new names,
   * which would leave the refused plans in the backend, outside the budget: a retyping migration
   * costs one new connection each.)
   */
  private retire(connection: Connection): void {
    if (connection.dropped || connection.retired) return;
    connection.retired = true;
    connection.forget();
    void connection.client.end().catch(() => undefined);
  }

  /** `name` if this connection prepares it (it has, or its budget allows one more), else undefined. */
  private nameOn(connection: Connection, name: string): string | undefined {
    if (connection.prepared.has(name)) return name;
    if (connection.prepared.size >= connection.budget) return undefined;
    connection.prepared.add(name);
    return name;
  }

  private nativeOf(sql: string, bindings: Bindings): NativeText {
    const natives = (this.natives ??= new LRUCache({max: Math.max(2_000, this.mostPrepared("ingest") + this.mostPrepared("reads"))}));
    let native = natives.get(sql);
    if (!native) {
      // Given each parameter's own name as its value, knex hands the values back in the order of the $n it placed.
      const names = Object.fromEntries(Object.keys(bindings).map((key) => [key, key]));
      const {sql: text, values} = toNativeSql(this.orm.em.getKnex(), sql, names);
      natives.set(sql, (native = {text, order: values as string[], name: statementName(text)}));
    }
    return native;
  }
}

/** The socket pg writes a connection's messages to (the TLS socket under TLS; pg's own, not in its typings). */
function socketOf(connection: Connection): Duplex {
  return (connection.client as unknown as {connection: {stream: Duplex}}).connection.stream;
}

/**
 * A 32-bit hash of a tenant id that spreads ids evenly whatever they look like: FNV-1a over its
 * UTF-16 code units, then murmur3's finalizer (so that the low bits a modulo reads depend on every
 * character). By hand, not a digest of node:crypto: each request picks its connection by it, and a
 * sha256 call measured ~15 µs in the API under load (bench:profile spread-single), where an even
 * spread needs no cryptographic strength.
 */
export function spreadHash(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) >>> 0;
}
