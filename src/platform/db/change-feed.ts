import type {EntityManager} from "@mikro-orm/postgresql";
import type {Logger} from "@tsed/common";
import {queryRows} from "./sql.js";

/**
 * What a feed's statement answers for `:since`: the database's clock, and the keys changed since
 * then (minus an overlap) with the stamp of each one's change, as two arrays in the same order
 * (both aggregates ordered by the same unique key).
 */
export interface ChangeFeedRow {
  now: Date;
  changed: string[];
  stamps: string[];
}

/** How long the feed remembers when it named a key, for `changedSince` (a read takes far less). */
const NOTICE_MEMORY_MS = 60_000;

export interface ChangeFeedOptions {
  /** Names the feed in the log (`<event>_FEED_FAILED`). */
  event: string;
  /**
   * Answers one ChangeFeedRow for `:since`, the previous answer's `now`. It must look back an
   * overlap before `:since`: a change stamped by a transaction's clock commits a little later.
   */
  sql: string;
  pollMs: number;
  /** How recently the feed must have answered for a cache to answer without the database. */
  freshnessMs: number;
  /** A fresh entity manager of the platform database, for each poll. */
  em: () => EntityManager;
  /** The owner's logger, asked at each failure (its injected properties resolve after construction). */
  logger: () => Logger;
  /** What the log says the cache does while the feed does not answer. */
  whileFailing: string;
  /** Given the keys the feed found changed, each change once. */
  onChanged: (keys: string[]) => void;
  /** Runs after each poll that answered (work batched until then). */
  afterPoll?: () => Promise<void>;
}

/**
 * A polled feed of what changed lately in a table that processes cache (revoked device keys,
 * changed users): every instance asks once per `pollMs` — one indexed query per process, however
 * many entries it caches — and forgets what changed, so its cache holds entries for minutes yet
 * answers a change within seconds. A cache may answer from memory only while `isFresh()`: past
 * `freshnessMs` without an answer (Postgres unreachable, the event loop stalled), it must read
 * the database again, so a change never goes unseen for longer than the bound it promises.
 * (Postgres' LISTEN/NOTIFY would need a dedicated connection and loses what is sent while it is
 * down; a poll over an index needs neither, and the feed's age is the whole failure model.)
 */
export class ChangeFeed {
  private timer?: NodeJS.Timeout;
  /** The poll under way: a second call waits for it rather than querying alongside. */
  private polling?: Promise<void>;
  /** The database's clock at the last answer (the feed's watermark), */
  private since?: Date;
  /** and this process's monotonic clock when that poll started. */
  private lastAnswerAt = Number.NEGATIVE_INFINITY;
  /** The last answer's changes (key → stamp): the overlap repeats them, they are passed on once. */
  private answered = new Map<string, string>();
  /** When each key was last passed on (monotonic ms), for NOTICE_MEMORY_MS. */
  private readonly noticedAt = new Map<string, number>();

  constructor(private readonly options: ChangeFeedOptions) {}

  /** Starts polling, once: a process that never caches never polls. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.poll(), this.options.pollMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Whether the feed answered recently enough for a cached entry to be trusted. */
  isFresh(now = performance.now()): boolean {
    return now - this.lastAnswerAt < this.options.freshnessMs;
  }

  /**
   * Whether the feed named `key` at or after `since` (monotonic ms): a read of it that started
   * then may predate the change and must not be cached (it would outlive the change's notice).
   */
  changedSince(key: string, since: number): boolean {
    return (this.noticedAt.get(key) ?? Number.NEGATIVE_INFINITY) >= since;
  }

  /** Polls now, or waits for the poll under way (which may have started before the caller's last write). */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    const startedAt = performance.now();
    try {
      const [feed] = await queryRows<ChangeFeedRow>(
        this.options.em(),
        this.options.sql,
        {since: this.since ?? new Date()},
        {prepare: true}
      );
      this.since = feed!.now;
      const answered = new Map(feed!.changed.map((key, i) => [key, feed!.stamps[i]!]));
      const changed = [...answered].filter(([key, stamp]) => this.answered.get(key) !== stamp).map(([key]) => key);
      this.answered = answered;
      this.notice(changed, startedAt);
      if (changed.length) this.options.onChanged(changed);
      // A poll that started before a change committed may not have seen it: fresh from its start.
      this.lastAnswerAt = startedAt;
      await this.options.afterPoll?.();
    } catch (error) {
      this.options.logger().warn({
        event: `${this.options.event}_FEED_FAILED`,
        error_message: (error as Error)?.message,
        note: this.options.whileFailing
      });
    }
  }

  private notice(keys: string[], now: number): void {
    for (const [key, at] of this.noticedAt) if (now - at > NOTICE_MEMORY_MS) this.noticedAt.delete(key);
    for (const key of keys) this.noticedAt.set(key, now);
  }
}
