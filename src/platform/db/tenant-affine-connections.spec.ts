import fc from "fast-check";
import {describe, expect, it} from "vitest";
import {ANSWER_GRACE_MS, answerDeadlineMs, spreadHash} from "./tenant-affine-connections.js";

describe("spreadHash (which connection a tenant's statements take)", () => {
  it("spreads ids evenly over any number of connections, however alike the ids are", () => {
    // Ids that differ in their trailing characters, as provisioned tenants' often do; and ids whose
    // characters share their low bits (a, e, i, … are 1 mod 4: what a hash without a finalizer
    // sends to one connection of four).
    const numbered = Array.from({length: 12_000}, (_, i) => `acme_${String(i).padStart(5, "0")}`);
    const alike = [..."aeimquy"].flatMap((a) => [..."aeimquy"].flatMap((b) => [..."aeimquy"].map((c) => `site_${a}${b}${c}`)));
    for (const ids of [numbered, alike])
      for (const connections of [2, 3, 4, 7]) {
        const counts = new Array<number>(connections).fill(0);
        for (const id of ids) counts[spreadHash(id) % connections]!++;
        const expected = ids.length / connections;
        // Within what chance allows a random assignment: 5 standard deviations of a bucket's count.
        const deviation = Math.sqrt(expected * (1 - 1 / connections));
        for (const count of counts) expect(Math.abs(count - expected)).toBeLessThan(5 * deviation);
      }
  });

  it("is an unsigned 32-bit integer, the same for the same id", () => {
    fc.assert(
      fc.property(fc.string(), (id) => {
        const hash = spreadHash(id);
        expect(Number.isInteger(hash) && hash >= 0 && hash < 2 ** 32).toBe(true);
        expect(spreadHash(id)).toBe(hash);
      })
    );
  });
});

describe("answerDeadlineMs (when a connection that stopped answering is given up)", () => {
  it("tells a silent connection by its first unanswered statement, a grace after the statement timeout", () => {
    expect(answerDeadlineMs(30_000, 0)).toBe(30_000 + ANSWER_GRACE_MS);
  });

  it("stays within what a timer keeps, however many statements are ahead (a longer delay would fire at once)", () => {
    expect(answerDeadlineMs(3_600_000, 10_000)).toBe(2 ** 31 - 1);
  });

  it("never cuts off a live server whose statements ahead each ran to their timeout", () => {
    fc.assert(
      fc.property(fc.integer({min: 100, max: 3_600_000}), fc.nat(64), (timeout, ahead) => {
        expect(answerDeadlineMs(timeout, ahead)).toBeGreaterThan((ahead + 1) * timeout);
      })
    );
  });
});
