import {randomUUID} from "node:crypto";
import {Inject, Injectable, Logger} from "@tsed/common";
import {RedisClient} from "../../platform/cache/redis.provider.js";
import type {EventBody} from "../../platform/outbox/outbox.js";
import {BoundedPublisher} from "./bounded-publisher.js";
import {EventStreamLog} from "./event-stream-log.js";

/** Events waiting for Redis, at most (about 5 MB); beyond, the oldest are dropped. */
export const LIVE_READINGS_MAX_WAITING = 10_000;
/**
 * A write announces at most this many of a device's readings, its newest, each event saying how
 * many the write stored (`readingsInWrite`): one event per reading of a 1,000-reading batch halved
 * the batch ingest's rate (bench:ingest-batch, 96,525 -> 44,747 readings/s), for events a live
 * view does not need: it shows the newest values, and reloads the history over REST.
 */
export const LIVE_READINGS_PER_WRITE = 10;
/** XADDs per pipeline. */
const BATCH = 1_000;
const DROP_LOG_EVERY_MS = 10_000;

/** A committed reading as the API shows it (the readings feature's StoredReading). */
export interface LiveReading {
  id: string;
  deviceId: string;
}

/**
 * `reading.created` on the live stream (docs/api.md, "Live stream"): the readings feature hands
 * over what it committed, and this appends one event per reading to the tenant's stream log in
 * Redis, the log the stream reads from.
 *
 * Not through the outbox table, unlike alert events: one outbox row per reading would double the
 * rows the ingest writes (and the relay's work with them), for events that only the live stream
 * shows and that are worth little late. So it is at most once: the write's answer never waits for
 * Redis (a bounded buffer, BoundedPublisher), and while Redis is slow or down, readings beyond the
 * buffer, or whose XADD failed, are not on the stream (clients reload over REST; alert events,
 * from the outbox, still arrive).
 */
@Injectable()
export class LiveReadings {
  @Inject(RedisClient)
  private redis!: RedisClient;

  @Inject()
  private log!: EventStreamLog;

  @Inject()
  private logger!: Logger;

  private lastDropLog = 0;

  readonly publisher = new BoundedPublisher<EventBody>((events) => this.append(events), {
    max: LIVE_READINGS_MAX_WAITING,
    batch: BATCH,
    onError: (error, lost) => this.dropped(error.message, lost)
  });

  /** After the commit of a write that stored `readingsInWrite` readings, of which these are announced (never awaited by the ingest). */
  committed(tenantId: string, readings: readonly LiveReading[], at: Date, readingsInWrite = readings.length): void {
    const occurredAt = at.toISOString();
    const dropped = this.publisher.dropped;
    this.publisher.push(
      readings.map((reading) => ({
        id: randomUUID(),
        type: "reading.created",
        occurredAt,
        tenantId,
        data: {deviceId: reading.deviceId, reading, readingsInWrite}
      }))
    );
    if (this.publisher.dropped > dropped) this.dropped("buffer full", this.publisher.dropped - dropped);
  }

  async $onDestroy() {
    await Promise.race([this.publisher.idle(), new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
  }

  private async append(events: EventBody[]): Promise<void> {
    const pipeline = this.redis.pipeline();
    let from = 0;
    // Consecutive events of one tenant share an XADD batch call (their order is kept either way).
    for (let i = 1; i <= events.length; i++) {
      if (i === events.length || events[i]!.tenantId !== events[from]!.tenantId) {
        this.log.append(pipeline, events[from]!.tenantId, events.slice(from, i));
        from = i;
      }
    }
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([error]) => error);
    if (failed) throw failed[0]!;
  }

  private dropped(reason: string, lost: number): void {
    const now = Date.now();
    if (now - this.lastDropLog < DROP_LOG_EVERY_MS) return;
    this.lastDropLog = now;
    this.logger.warn({event: "LIVE_READINGS_DROPPED", reason, lost, droppedTotal: this.publisher.dropped});
  }
}
