import fc from "fast-check";
import {describe, expect, it} from "vitest";
import {groupCommitItems} from "../observability/metrics.js";
import {GroupCommitLanes} from "./group-commit-lanes.js";

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("GroupCommitLanes", () => {
  it("answers every item once with its own output, one write in flight per key, groups in submission order and within the size", async () => {
    await fc.assert(
      fc.asyncProperty(
        // Submissions: a key, and how many event-loop turns to wait before the next one.
        fc.array(fc.tuple(fc.constantFrom("a", "b", "c"), fc.nat({max: 2})), {minLength: 1, maxLength: 60}),
        // How many turns each write takes, and whether it fails.
        fc.array(fc.tuple(fc.nat({max: 3}), fc.boolean()), {minLength: 1, maxLength: 20}),
        fc.integer({min: 1, max: 5}),
        async (submissions, writes, maxGroupSize) => {
          const inFlight = new Map<string, number>();
          const written: {key: string; items: number[]}[] = [];
          let w = 0;
          const lanes = new GroupCommitLanes<number, string>(
            async (key, items) => {
              expect(inFlight.get(key) ?? 0).toBe(0);
              expect(items.length).toBeGreaterThan(0);
              expect(items.length).toBeLessThanOrEqual(maxGroupSize);
              inFlight.set(key, 1);
              const [turns, fails] = writes[w++ % writes.length]!;
              for (let i = 0; i < turns; i++) await tick();
              inFlight.set(key, 0);
              if (fails) throw new Error(`write ${key} failed`);
              written.push({key, items});
              return items.map((item) => `${key}:${item}`);
            },
            {windowMs: 0, maxSize: maxGroupSize}
          );

          const answers: Promise<{item: number; key: string; output?: string; error?: string}>[] = [];
          for (const [index, [key, wait]] of submissions.entries()) {
            answers.push(
              lanes.submit(key, index).then(
                (output) => ({item: index, key, output}),
                (error: Error) => ({item: index, key, error: error.message})
              )
            );
            for (let i = 0; i < wait; i++) await tick();
          }
          const settled = await Promise.all(answers);
          for (const answer of settled) {
            if (answer.error) expect(answer.error).toBe(`write ${answer.key} failed`);
            else expect(answer.output).toBe(`${answer.key}:${answer.item}`);
          }
          // Every item written at most once, and per key in submission order.
          const seen = written.flatMap((group) => group.items);
          expect(new Set(seen).size).toBe(seen.length);
          for (const key of ["a", "b", "c"]) {
            const order = written.filter((group) => group.key === key).flatMap((group) => group.items);
            expect(order).toEqual([...order].sort((x, y) => x - y));
          }
          expect(settled.filter((a) => a.output).length).toBe(seen.length);
        }
      ),
      {seed: 7, numRuns: 200}
    );
  });

  it("writes an item at once when its key is idle, and gathers the items that arrive meanwhile into one write", async () => {
    const groups: number[][] = [];
    let release!: () => void;
    const lanes = new GroupCommitLanes<number, number>(
      async (_key, items) => {
        groups.push(items);
        if (groups.length === 1) await new Promise<void>((resolve) => (release = resolve));
        return items;
      },
      {windowMs: 0, maxSize: 100}
    );
    const first = lanes.submit("t", 1);
    await tick();
    expect(groups).toEqual([[1]]);
    const later = [2, 3, 4].map((item) => lanes.submit("t", item));
    await tick();
    expect(groups).toEqual([[1]]);
    release();
    expect(await Promise.all([first, ...later])).toEqual([1, 2, 3, 4]);
    expect(groups).toEqual([[1], [2, 3, 4]]);
  });

  it("with a window, gathers what arrives within it; a full group goes at once, an item larger than a group alone beside the lane; flush ends the window", async () => {
    const groups: number[][] = [];
    const lanes = new GroupCommitLanes<number, number>(
      async (_key, items) => {
        groups.push(items);
        return items;
      },
      {windowMs: 60_000, maxSize: 10, sizeOf: (item) => item}
    );
    const small = [1, 2].map((item) => lanes.submit("t", item));
    await tick();
    expect(groups).toEqual([]); // the window (a minute) has not passed
    const big = lanes.submit("t", 11);
    await tick();
    expect(groups).toEqual([[11]]); // alone, at once, the open group still waiting
    const filling = lanes.submit("t", 7); // 1 + 2 + 7 = 10: full
    await tick();
    expect(groups).toEqual([[11], [1, 2, 7]]);
    const late = lanes.submit("t", 3);
    await tick();
    expect(groups).toHaveLength(2);
    await lanes.flush();
    expect(groups).toEqual([[11], [1, 2, 7], [3]]);
    expect(await Promise.all([...small, big, filling, late])).toEqual([1, 2, 11, 7, 3]);
  });

  it("counts the items of each write in group_commit_items under its lanes' name, an item written alone beside the lane as 1", async () => {
    const itemsPerWrite = async () => (await groupCommitItems.get()).values.filter((v) => v.labels.lanes === "spec_lanes");
    const lanes = new GroupCommitLanes<number, number>(async (_key, items) => items, {
      windowMs: 0,
      maxSize: 10,
      sizeOf: (item) => item,
      metricName: "spec_lanes"
    });
    await Promise.all([1, 2, 3].map((item) => lanes.submit("t", item))); // one tick: one write of 3
    await lanes.submit("t", 11); // larger than a group: alone
    const values = await itemsPerWrite();
    expect(values.find((v) => v.metricName === "group_commit_items_count")?.value).toBe(2);
    expect(values.find((v) => v.metricName === "group_commit_items_sum")?.value).toBe(4);
    expect(values.find((v) => v.metricName === "group_commit_items_bucket" && (v.labels as {le?: number}).le === 2)?.value).toBe(1);
  });
});
