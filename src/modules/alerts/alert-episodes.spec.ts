import fc from "fast-check";
import {describe, expect, it} from "vitest";
import {AlertCondition} from "./alert-rule.entity.js";
import {deriveEpisodes, type Episode, episodeChanges, type EpisodeReading, type StoredEpisode, type Threshold} from "./alert-episodes.js";
import {violates} from "./alert-predicate.js";

const at = (minute: number) => new Date(Date.UTC(2026, 2, 28, 10, minute));
let nextId = 1;
const reading = (minute: number, temperatureCelsius: number): EpisodeReading => ({
  id: String(nextId++),
  temperatureCelsius,
  recordedAt: at(minute)
});
const above30: Threshold = {condition: AlertCondition.ABOVE, thresholdCelsius: 30};
const below2: Threshold = {condition: AlertCondition.BELOW, thresholdCelsius: 2};
const stored = (id: string, episode: Episode, acknowledgedAt: Date | null = null): StoredEpisode => ({
  ...episode,
  id,
  acknowledgedAt,
  acknowledgedById: acknowledgedAt ? "u1" : null
});

describe("alert episodes", () => {
  it("treats the threshold itself as inside, for both conditions", () => {
    expect(violates(above30, 30)).toBe(false);
    expect(violates(above30, 30.01)).toBe(true);
    expect(violates(below2, 2)).toBe(false);
    expect(violates(below2, 1.99)).toBe(true);
  });

  it("opens, extends, resolves and opens again over readings in recordedAt order", () => {
    const [r1, r2, r3, r4] = [reading(1, 31), reading(2, 35), reading(3, 29), reading(4, 33)];
    expect(deriveEpisodes(above30, [r1, r2, r3, r4])).toEqual([
      {
        readingId: r1.id,
        temperatureCelsius: 31,
        firedAt: at(1),
        lastReadingAt: at(2),
        peakTemperatureCelsius: 35,
        readingCount: 2,
        resolvedAt: at(3)
      },
      {
        readingId: r4.id,
        temperatureCelsius: 33,
        firedAt: at(4),
        lastReadingAt: at(4),
        peakTemperatureCelsius: 33,
        readingCount: 1,
        resolvedAt: null
      }
    ]);
  });

  it("carries an open episode on: 31 °C, 20 °C, 32 °C are two episodes, whichever write brings which", () => {
    const [r1, r2, r3] = [reading(1, 31), reading(2, 20), reading(3, 32)];
    const [open] = deriveEpisodes(above30, [r1]);
    const carried = deriveEpisodes(above30, [r2, r3], open);
    expect(carried).toEqual(deriveEpisodes(above30, [r1, r2, r3]));
    expect(carried.map((e) => [e.firedAt, e.resolvedAt])).toEqual([
      [at(1), at(2)],
      [at(3), null]
    ]);
  });

  it("uses the lowest temperature as the peak of a `below` episode", () => {
    expect(deriveEpisodes(below2, [reading(1, 1.5), reading(2, -3), reading(3, 0)])).toEqual([
      expect.objectContaining({peakTemperatureCelsius: -3, readingCount: 3, resolvedAt: null, temperatureCelsius: 1.5})
    ]);
  });

  it("leaves everything alone when nothing crosses the threshold", () => {
    expect(deriveEpisodes(above30, [reading(1, 21), reading(2, 30)])).toEqual([]);
  });

  it("derives the same episodes all at once as in consecutive chunks carried on (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({min: 25, max: 35}), {minLength: 1, maxLength: 60}),
        fc.array(fc.nat(), {maxLength: 8}),
        (temperatures, cuts) => {
          const readings = temperatures.map((t, i) => ({
            id: String(i),
            temperatureCelsius: t,
            recordedAt: new Date(Date.UTC(2026, 0, 1) + i * 30_000)
          }));
          const whole = deriveEpisodes(above30, readings);
          const bounds = [...new Set(cuts.map((c) => c % readings.length))].sort((a, b) => a - b);
          const episodes: Episode[] = [];
          let from = 0;
          for (const to of [...bounds, readings.length]) {
            const open = episodes.at(-1)?.resolvedAt === null ? episodes.pop()! : null;
            episodes.push(...deriveEpisodes(above30, readings.slice(from, to), open));
            from = to;
          }
          expect(episodes).toEqual(whole);
        }
      ),
      {seed: 11, numRuns: 300}
    );
  });

  describe("episodeChanges", () => {
    const e = (fired: number, last: number, resolved: number | null, readingId = `r${fired}`): Episode => ({
      readingId,
      temperatureCelsius: 31,
      firedAt: at(fired),
      lastReadingAt: at(last),
      peakTemperatureCelsius: 31,
      readingCount: 1,
      resolvedAt: resolved === null ? null : at(resolved)
    });

    it("keeps the id and acknowledgement of an episode that goes on, and lets a split-off part inherit the acknowledgement", () => {
      const acked = stored("a1", e(1, 9, null), at(5));
      const changes = episodeChanges([acked], [e(1, 3, 4), e(6, 9, null)]);
      expect(changes.update).toEqual([{...e(1, 3, 4), id: "a1"}]);
      expect(changes.insert).toEqual([{...e(6, 9, null), acknowledgedFrom: acked}]);
      expect(changes.remove).toEqual([]);
    });

    it("moves an episode's start back when a late violation precedes it, keeping the row", () => {
      const changes = episodeChanges([stored("a1", e(5, 9, 10))], [e(4, 9, 10, "late")]);
      expect(changes.update).toEqual([{...e(4, 9, 10, "late"), id: "a1"}]);
      expect(changes.insert).toEqual([]);
    });

    it("removes stored episodes nothing continues and inserts derived ones nothing stored overlaps", () => {
      const changes = episodeChanges([stored("a1", e(1, 2, 3)), stored("a2", e(4, 5, 6))], [e(1, 5, 6)]);
      expect(changes.update.map((u) => u.id)).toEqual(["a1"]);
      expect(changes.remove.map((r) => r.id)).toEqual(["a2"]);
      expect(episodeChanges([], [e(1, 2, 3)]).insert).toEqual([{...e(1, 2, 3), acknowledgedFrom: null}]);
    });
  });
});
