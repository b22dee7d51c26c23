import fc from "fast-check";
import {vi} from "vitest";
import type {ChangeFeed} from "../../src/platform/db/change-feed.js";

export type RaceStep = "read" | "change" | "poll" | "answer";

/**
 * Every order of a cache's read (its query, then its answer), a change of the row it reads and a
 * poll of the change feed; the read's query comes before its answer.
 */
export const raceOrders = fc
  .shuffledSubarray<RaceStep>(["read", "change", "poll", "answer"], {minLength: 4, maxLength: 4})
  .filter((order) => order.indexOf("read") < order.indexOf("answer"));

/** A poll that starts now: the first call may join one already under way, begun before. */
export async function pollFromNow(feed: ChangeFeed): Promise<void> {
  await feed.poll();
  await feed.poll();
}

export interface RaceActors {
  feed: ChangeFeed;
  /** The cache and the name of its method that queries the row: its next call is held between query and answer. */
  reader: object;
  query: string;
  /** A read through the cache (it calls `reader[query]`). */
  read: () => Promise<unknown>;
  change: () => Promise<unknown>;
}

/** Plays `order` on the real tables, then polls once more from now: the caller checks what the cache answers after. */
export async function playRace(order: readonly RaceStep[], actors: RaceActors): Promise<void> {
  const owner = actors.reader as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = owner[actors.query]!.bind(owner);
  let queried!: () => void;
  const rowQueried = new Promise<void>((resolve) => (queried = resolve));
  let answer!: () => void;
  const answerReleased = new Promise<void>((resolve) => (answer = resolve));
  vi.spyOn(owner, actors.query).mockImplementationOnce(async (...args: unknown[]) => {
    const row = await original(...args);
    queried();
    await answerReleased;
    return row;
  });
  let reading: Promise<unknown> | undefined;
  for (const step of order) {
    if (step === "read") {
      reading = actors.read();
      await rowQueried;
    } else if (step === "change") await actors.change();
    else if (step === "poll") await pollFromNow(actors.feed);
    else {
      answer();
      await reading;
    }
  }
  await pollFromNow(actors.feed);
}
