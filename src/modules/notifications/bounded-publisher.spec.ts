import {describe, expect, it} from "vitest";
import {BoundedPublisher} from "./bounded-publisher.js";

describe("BoundedPublisher", () => {
  it("returns at once while the sink hangs, keeps at most `max` waiting, and drops the oldest", async () => {
    const sent: number[][] = [];
    let release!: () => void;
    const hanging = new Promise<void>((resolve) => (release = resolve));
    const publisher = new BoundedPublisher<number>(
      async (items) => {
        sent.push(items);
        if (sent.length === 1) await hanging;
      },
      {max: 100, batch: 10}
    );
    const started = performance.now();
    for (let i = 0; i < 10_000; i++) publisher.push([i]);
    const elapsedMs = performance.now() - started;
    expect(elapsedMs).toBeLessThan(1_000); // not a timing test: a push that waited on the sink would never return
    expect(sent).toEqual([[0]]); // the first push started a send, which hangs
    expect(publisher.waiting).toBe(100);
    expect(publisher.dropped).toBe(10_000 - 1 - 100);
    release();
    await publisher.idle();
    expect(sent.slice(1).flat()).toEqual(Array.from({length: 100}, (_, i) => 9_900 + i));
    expect(sent.slice(1).every((items) => items.length <= 10)).toBe(true);
  });

  it("drops a batch whose send failed, reports it, and goes on with the next", async () => {
    const sent: number[] = [];
    const errors: number[] = [];
    const publisher = new BoundedPublisher<number>(
      async (items) => {
        if (items.includes(3)) throw new Error("down");
        sent.push(...items);
      },
      {max: 100, batch: 2, onError: (_error, lost) => errors.push(lost)}
    );
    publisher.push([1, 2, 3, 4, 5]);
    await publisher.idle();
    expect(sent).toEqual([1, 2, 5]);
    expect(errors).toEqual([2]);
    expect(publisher.dropped).toBe(2);
  });
});
