import fc from "fast-check";
import {describe, expect, it} from "vitest";
import {compareIds} from "./event-stream-log.js";

const part = fc.bigInt({min: 0n, max: 999_999_999_999_999n});

describe("compareIds", () => {
  it("orders Redis stream ids (`ms-seq`, each part up to 15 digits) as their numbers do", () => {
    fc.assert(
      fc.property(part, part, part, part, (am, as, bm, bs) => {
        const expected = am === bm ? (as === bs ? 0 : as < bs ? -1 : 1) : am < bm ? -1 : 1;
        expect(compareIds(`${am}-${as}`, `${bm}-${bs}`)).toBe(expected);
        expect(compareIds(`${am}-${as}`, `${am}-${as}`)).toBe(0);
      }),
      {numRuns: 2_000}
    );
    // Lengths differ: not a string comparison.
    expect(compareIds("99-0", "100-0")).toBe(-1);
    expect(compareIds("5-10", "5-9")).toBe(1);
  });
});
