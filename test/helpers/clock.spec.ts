import fc from "fast-check";
import {describe, expect, it} from "vitest";
import {localDate, localIsoString} from "../../src/common/local-time.js";
import {zoneFarFromLocalHour, zoneFarFromMidnight} from "./clock.js";

/** The helpers the stats, cache and aggregation specs lean on to stay away from midnight and the hour. */
describe("test clock helpers", () => {
  const instant = fc.integer({min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1)}).map((ms) => new Date(ms));

  it("picks a zone where the instant is over 10 hours from local midnight, and reads its date as Intl does", () => {
    fc.assert(
      fc.property(instant, (now) => {
        const choice = zoneFarFromMidnight(now);
        expect(choice.marginMinutes).toBeGreaterThan(10 * 60);
        // Etc/GMT-5 is UTC+5: the helper's arithmetic must agree with the runtime's zone database.
        expect(localDate(now, choice.zone)).toBe(choice.localDate);
        expect(localDate(new Date(now.getTime() + 10 * 3_600_000), choice.zone)).toBe(choice.localDate);
        expect(localDate(new Date(now.getTime() - 10 * 3_600_000), choice.zone)).toBe(choice.localDate);
      })
    );
  });

  it("with dateDiffersFromUtc, picks a zone on another date than UTC, an hour or more from its midnight", () => {
    fc.assert(
      fc.property(instant, (now) => {
        const choice = zoneFarFromMidnight(now, {dateDiffersFromUtc: true});
        expect(choice.localDate).not.toBe(now.toISOString().slice(0, 10));
        expect(localDate(now, choice.zone)).toBe(choice.localDate);
        expect(localDate(new Date(now.getTime() + 55 * 60_000), choice.zone)).toBe(choice.localDate);
        expect(localDate(new Date(now.getTime() - 55 * 60_000), choice.zone)).toBe(choice.localDate);
      })
    );
  });

  it("picks a half- or quarter-hour zone whose local hour starts at least 7.5 minutes away", () => {
    fc.assert(
      fc.property(instant, (now) => {
        const choice = zoneFarFromLocalHour(now);
        expect(choice.marginMinutes).toBeGreaterThanOrEqual(7.5);
        expect(localIsoString(now, choice.zone).endsWith(choice.offset)).toBe(true);
        const startOf = (t: Date) => Math.floor((t.getTime() - choice.startMinute * 60_000) / 3_600_000);
        // The same local hour 7 minutes either side.
        expect(startOf(new Date(now.getTime() + 7 * 60_000))).toBe(startOf(now));
        expect(startOf(new Date(now.getTime() - 7 * 60_000))).toBe(startOf(now));
      })
    );
  });
});
