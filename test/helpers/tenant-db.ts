import {setTimeout as sleep} from "node:timers/promises";
import {RetryStrategy} from "@tsed/mikro-orm";
import {PlatformTest} from "@tsed/common";
import pg from "pg";
import type {ExponentialBackoffRetryStrategy, RetryEvent} from "../../src/platform/db/exponential-backoff.retry-strategy.js";
import {quoteTenantSchema} from "../../src/platform/tenancy/tenant-id.js";

/**
 * Direct SQL access to a test tenant's schema, for what the API cannot show: row counts, forcing
 * concurrent requests to overlap, and test-only triggers. Used by the readings and alerts specs.
 */
export class TenantDb {
  readonly schema: string;
  private readonly client: pg.Client;

  constructor(readonly tenantId: string) {
    this.schema = quoteTenantSchema(tenantId);
    this.client = new pg.Client({connectionString: process.env.DATABASE_URL});
  }

  async connect(): Promise<this> {
    await this.client.connect();
    return this;
  }

  close() {
    return this.client.end();
  }

  async query<T extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.client.query<T>(sql, params)).rows;
  }

  async count(table: string, where = "true", params: unknown[] = []): Promise<number> {
    const [row] = await this.query<{n: number}>(`select count(*)::int as n from ${this.schema}."${table}" where ${where}`, params);
    return row!.n;
  }

  /**
   * Makes `requests` collide for real: holds a SHARE lock on `table` (reads still pass, writes
   * wait) until `waiters` backends are queued behind it, then releases them all at once.
   */
  async overlapOn<T>(table: string, waiters: number, requests: () => Promise<T>): Promise<T> {
    await this.client.query("begin");
    await this.client.query(`lock table ${this.schema}."${table}" in share mode`);
    const pending = requests();
    try {
      for (let i = 0; ; i++) {
        const [row] = await this.query<{n: number}>(
          `select count(*)::int as n from pg_locks where relation = $1::regclass and not granted`,
          [`${this.schema}."${table}"`]
        );
        if (row!.n >= waiters) break;
        if (i > 500) throw new Error(`only ${row!.n} of ${waiters} writers reached ${table}`);
        await sleep(10);
      }
    } finally {
      await this.client.query("commit");
    }
    return pending;
  }

  /**
   * Makes `requests` queue on one row: holds it FOR UPDATE until `waiters` backends wait for it
   * (the first on this transaction, the others on the row's tuple lock), then releases them all at once.
   */
  async overlapOnRow<T>(table: string, id: string, waiters: number, requests: () => Promise<T>): Promise<T> {
    await this.client.query("begin");
    await this.client.query(`select 1 from ${this.schema}."${table}" where "id" = $1 for update`, [id]);
    const [{xid}] = (await this.query<{xid: string}>(`select txid_current()::text as xid`)) as [{xid: string}];
    const pending = requests();
    try {
      for (let i = 0; ; i++) {
        const [row] = await this.query<{n: number}>(
          `select count(*)::int as n from pg_locks
            where not granted and ((locktype = 'transactionid' and transactionid::text = $1) or (locktype = 'tuple' and relation = $2::regclass))`,
          [xid, `${this.schema}."${table}"`]
        );
        if (row!.n >= waiters) break;
        if (i > 500) throw new Error(`only ${row!.n} of ${waiters} writers queued on ${table} ${id}`);
        await sleep(10);
      }
    } finally {
      await this.client.query("commit");
    }
    return pending;
  }
}

/** The application's RetryStrategy (ours), to observe its retries. */
export function retryStrategy(): ExponentialBackoffRetryStrategy {
  return PlatformTest.get<ExponentialBackoffRetryStrategy>(RetryStrategy);
}

/** Runs `task` and collects the transaction retries that happened meanwhile. */
export async function collectRetries<T>(task: () => Promise<T>): Promise<{result: T; retries: RetryEvent[]}> {
  const retries: RetryEvent[] = [];
  const stop = retryStrategy().onRetry((event) => retries.push(event));
  try {
    return {result: await task(), retries};
  } finally {
    stop();
  }
}

/** `2026-01-01T00:00:00Z` plus `minutes` (past, well inside the accepted range). */
export const minute = (minutes: number) => new Date(Date.UTC(2026, 0, 1) + minutes * 60_000).toISOString();
