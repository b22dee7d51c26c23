import fc from "fast-check";
import {describe, expect, it} from "vitest";
import {changeRawRetention, dropRetentionDays, pendingEffectiveAt, type RawRetentionState} from "./raw-retention.js";

const DAY = 86_400_000;
const GRACE = 7 * DAY;
const t0 = new Date("2026-12-06T09:00:00Z");
const at = (days: number) => new Date(t0.getTime() + days * DAY);
const none: RawRetentionState = {days: null, effectiveAt: null, daysBefore: null};
const kept400: RawRetentionState = {days: 400, effectiveAt: null, daysBefore: null};

describe("raw retention with a grace period", () => {
  it("drops by a shortened retention only after the grace, while refusing by it at once", () => {
    const shortened = changeRawRetention(kept400, 3, at(1), GRACE);
    expect(shortened).toEqual({days: 3, effectiveAt: at(8), daysBefore: 400});
    expect(dropRetentionDays(shortened, at(7.9))).toBe(400);
    expect(pendingEffectiveAt(shortened, at(7.9))).toEqual(at(8));
    expect(dropRetentionDays(shortened, at(8))).toBe(3);
    expect(pendingEffectiveAt(shortened, at(8))).toBeNull();
    // Lengthening is in force at once.
    expect(changeRawRetention(kept400, 500, t0, GRACE)).toEqual({days: 500, effectiveAt: null, daysBefore: null});
  });

  it("drops nothing more when set back within the grace (lengthened or removed)", () => {
    const shortened = changeRawRetention(kept400, 3, t0, GRACE);
    expect(changeRawRetention(shortened, 400, at(2), GRACE)).toEqual(kept400);
    expect(changeRawRetention(shortened, null, at(2), GRACE)).toEqual(none);
    // Set back part of the way: still shorter than what the drop keeps, so it waits again, by the old retention.
    expect(changeRawRetention(shortened, 30, at(2), GRACE)).toEqual({days: 30, effectiveAt: at(9), daysBefore: 400});
  });

  it("starts the grace from no retention too, and not again for the same value", () => {
    const first = changeRawRetention(none, 30, t0, GRACE);
    expect(first).toEqual({days: 30, effectiveAt: at(7), daysBefore: null});
    expect(dropRetentionDays(first, at(1))).toBeNull();
    expect(changeRawRetention(first, 30, at(3), GRACE)).toBe(first);
  });

  it("applies at once with a grace of 0", () => {
    expect(changeRawRetention(kept400, 3, t0, 0)).toEqual({days: 3, effectiveAt: null, daysBefore: null});
  });

  it("never drops by less than a value in force within the last grace period, whatever the sequence of settings", () => {
    const seed = Date.now() % 2 ** 31;
    console.log(`raw-retention property seed ${seed}`);
    const setting = fc.oneof(fc.constant(null), fc.integer({min: 3, max: 500}));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.double({min: 0, max: 10, noNaN: true}), setting), {maxLength: 12}),
        fc.double({min: 0, max: 10, noNaN: true}),
        (steps, probeGap) => {
          let state = none;
          let now = t0.getTime();
          const history: {at: number; days: number | null}[] = [{at: -Infinity, days: null}];
          for (const [gap, days] of steps) {
            now += gap * DAY;
            state = changeRawRetention(state, days, new Date(now), GRACE);
            history.push({at: now, days});
          }
          const probe = now + probeGap * DAY;
          const dropped = dropRetentionDays(state, new Date(probe));
          if (dropped === null) return; // keeps everything
          // Each setting in force at some instant of (probe - GRACE, probe]: set back to it in time, nothing it kept is lost.
          const inWindow = history.filter((h, i) => (history[i + 1]?.at ?? Infinity) > probe - GRACE && h.at <= probe);
          for (const h of inWindow) expect(h.days !== null && h.days <= dropped, JSON.stringify({h, dropped})).toBe(true);
        }
      ),
      {seed, numRuns: 500, interruptAfterTimeLimit: 5_000, endOnFailure: true}
    );
  });
});
