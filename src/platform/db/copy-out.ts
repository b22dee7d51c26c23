import type {Readable} from "node:stream";
import {Inject, Injectable} from "@tsed/common";
import pg from "pg";
import {to as copyTo} from "pg-copy-streams";
import {AppConfig} from "../../config/app-config.js";
import {ServiceUnavailableError} from "../../common/errors.js";

/** How exports show in pg_stat_activity. */
export const COPY_OUT_APPLICATION_NAME = "smart-thermo-export";

/**
 * `COPY (query) TO STDOUT` as a Node stream, on a pool of its own (`EXPORT_*`): exports are long
 * and paced by their readers, and must never take the connections ingestion and the API's reads
 * need. `EXPORT_DATABASE_URL` may point at a read replica.
 *
 * Backpressure end to end: pg-copy-streams reads the connection's socket only as fast as the
 * stream is read, so a slow reader leaves the data in the kernel's socket buffers and Postgres
 * blocks on its write (wait event ClientWrite) — the query slows down, this process buffers
 * nothing. A stream destroyed before its end (the HTTP client went away) destroys its connection
 * rather than returning it to the pool: Postgres' next write fails and the query stops; and
 * `client_connection_check_interval` makes a backend still sorting (nothing written yet) notice
 * within a second too.
 */
@Injectable()
export class CopyOutDatabase {
  @Inject()
  private config!: AppConfig;

  private pool?: pg.Pool;

  /**
   * Starts a `COPY (…) TO STDOUT …` statement. It is sent as a simple query (COPY takes no
   * parameters): every value in it must be a literal made with `literal()`.
   * @throws ServiceUnavailableError when all export connections stay busy for 5 s (or Postgres is unreachable)
   */
  async copyOut(copyStatement: string): Promise<Readable> {
    let client: pg.PoolClient;
    try {
      client = await this.connections().connect();
    } catch (error) {
      throw new ServiceUnavailableError("No export connection is free (or the database is unreachable); retry later", 5, {cause: error});
    }
    const stream = client.query(copyTo(copyStatement));
    let released = false;
    const release = (error?: Error) => {
      if (released) return;
      released = true;
      if (error) (client as unknown as {connection?: {stream?: {destroy(): void}}}).connection?.stream?.destroy();
      client.release(error);
    };
    stream.once("end", () => release());
    stream.once("error", (error: Error) => release(error));
    stream.once("close", () => release(new Error("COPY stream closed before its end")));
    return stream;
  }

  /** A value as an SQL literal, for the query of copyOut. */
  literal(value: string): string {
    return pg.escapeLiteral(value);
  }

  async $onDestroy() {
    await this.pool?.end();
  }

  private connections(): pg.Pool {
    if (this.pool) return this.pool;
    const {databaseUrl, poolMax, statementTimeoutMs} = this.config.export;
    this.pool = new pg.Pool({
      connectionString: databaseUrl,
      max: poolMax,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      application_name: COPY_OUT_APPLICATION_NAME,
      statement_timeout: statementTimeoutMs,
      options: "-c client_connection_check_interval=1000"
    });
    // An idle export connection that dies (Postgres restarted) must not crash the process.
    this.pool.on("error", () => undefined);
    return this.pool;
  }
}
