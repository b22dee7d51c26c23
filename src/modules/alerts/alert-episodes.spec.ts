import fc from "fast-check";
import {describe, expect, it} from "vitest";
import {AlertCondition} from "./alert-rule.entity.js";
import {
  type AlarmRule,
  deriveEpisodes,
  deriveSilences,
  type Episode,
  episodeChanges,
  type EpisodeReading,
  type StoredEpisode
} from "./alert-episodes.js";
import {violates} from "./alert-predicate.js";

const at = (minute: number) => new Date(Date.UTC(2026, 2, 28, 10, minute));
let nextId = 1;
const reading = (minute: number, temperatureCelsius: number): EpisodeReading => ({
  id: String(nextId++),
  temperatureCelsius,
  recordedAt: at(minute)
});
const plain = {forSeconds: 0, clearDeltaCelsius: 0};
const above30: AlarmRule = {condition: AlertCondition.ABOVE, thresholdCelsius: 30, ...plain};
const below2: AlarmRule = {condition: AlertCondition.BELOW, thresholdCelsius: 2, ...plain};
const stored = (id: string, episode: Episode, acknowledgedAt: Date | null = null): StoredEpisode => ({
  ...episode,
  id,
  acknowledgedAt,
  acknowledgedById: acknowledgedAt ? "u1" : null,
  acknowledgementComment: null
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
        breachStartedAt: at(1),
        firedAt: at(1),
        lastReadingAt: at(2),
        peakTemperatureCelsius: 35,
        readingCount: 2,
        resolvedAt: at(3)
      },
      {
        readingId: r4.id,
        temperatureCelsius: 33,
        breachStartedAt: at(4),
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

  it("fires only once a run has lasted forSeconds, from the run's first reading; a shorter run fires nothing", () => {
    const rule = {...above30, forSeconds: 120};
    // A 1-minute excursion (a door opened), then a run from minute 5 that lasts 2 minutes at minute 7.
    const rs = [
      reading(1, 31),
      reading(2, 32),
      reading(3, 20),
      reading(5, 33),
      reading(6, 36),
      reading(7, 34),
      reading(8, 35),
      reading(9, 29)
    ];
    expect(deriveEpisodes(rule, rs)).toEqual([
      {
        readingId: rs[5]!.id,
        temperatureCelsius: 34,
        breachStartedAt: at(5),
        firedAt: at(7),
        lastReadingAt: at(8),
        peakTemperatureCelsius: 36,
        readingCount: 4,
        resolvedAt: at(9)
      }
    ]);
    expect(deriveEpisodes(rule, rs.slice(0, 3))).toEqual([]);
  });

  it("keeps an episode open through the hysteresis band and resolves it at T − δ (`below`: T + δ)", () => {
    const above = {...above30, clearDeltaCelsius: 2};
    const episodes = deriveEpisodes(above, [
      reading(1, 31),
      reading(2, 29),
      reading(3, 28.5),
      reading(4, 31.5),
      reading(5, 28),
      reading(6, 29)
    ]);
    expect(episodes.map((e) => [e.firedAt, e.lastReadingAt, e.readingCount, e.resolvedAt])).toEqual([[at(1), at(4), 2, at(5)]]);
    const below = {...below2, clearDeltaCelsius: 1};
    expect(deriveEpisodes(below, [reading(1, 1), reading(2, 2.5), reading(3, 3)]).map((e) => e.resolvedAt)).toEqual([at(3)]);
    // In the band with no episode open, nothing starts: the band only holds an open episode.
    expect(deriveEpisodes(above, [reading(1, 29), reading(2, 29.5)])).toEqual([]);
  });

  it("derives silences longer than silenceSeconds between arrivals, and the open one at the end", () => {
    const t = (s: number) => new Date(Date.UTC(2026, 2, 28, 10) + s * 1000);
    expect(deriveSilences(60, [t(30), t(200), t(230), t(260)], t(0), t(400))).toEqual([
      {silentSince: t(30), firedAt: t(90), resolvedAt: t(200)},
      {silentSince: t(260), firedAt: t(320), resolvedAt: null}
    ]);
    // Exactly silenceSeconds is not longer than it; a back-filled order does not matter.
    expect(deriveSilences(60, [t(120), t(60)], t(0), t(180))).toEqual([]);
    expect(deriveSilences(60, [], t(0), t(61))).toEqual([{silentSince: t(0), firedAt: t(60), resolvedAt: null}]);
  });

  it("derives the same episodes all at once as in consecutive chunks carried on, hysteresis included (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({min: 25, max: 35}), {minLength: 1, maxLength: 60}),
        fc.array(fc.nat(), {maxLength: 8}),
        fc.constantFrom(0, 2),
        (temperatures, cuts, clearDeltaCelsius) => {
          const rule = {...above30, clearDeltaCelsius};
          const readings = temperatures.map((t, i) => ({
            id: String(i),
            temperatureCelsius: t,
            recordedAt: new Date(Date.UTC(2026, 0, 1) + i * 30_000)
          }));
          const whole = deriveEpisodes(rule, readings);
          const bounds = [...new Set(cuts.map((c) => c % readings.length))].sort((a, b) => a - b);
          const episodes: Episode[] = [];
          let from = 0;
          for (const to of [...bounds, readings.length]) {
            const open = episodes.at(-1)?.resolvedAt === null ? episodes.pop()! : null;
            episodes.push(...deriveEpisodes(rule, readings.slice(from, to), open));
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
      breachStartedAt: at(fired),
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
      expect(changes.retract).toEqual([]);
    });

    it("moves an episode's start back when a late violation precedes it, keeping the row", () => {
      const changes = episodeChanges([stored("a1", e(5, 9, 10))], [e(4, 9, 10, "late")]);
      expect(changes.update).toEqual([{...e(4, 9, 10, "late"), id: "a1"}]);
      expect(changes.insert).toEqual([]);
    });

    it("retracts stored episodes nothing continues and inserts derived ones nothing stored overlaps", () => {
      const changes = episodeChanges([stored("a1", e(1, 2, 3)), stored("a2", e(4, 5, 6))], [e(1, 5, 6)]);
      expect(changes.update.map((u) => u.id)).toEqual(["a1"]);
      expect(changes.retract.map((r) => r.id)).toEqual(["a2"]);
      expect(episodeChanges([], [e(1, 2, 3)]).insert).toEqual([{...e(1, 2, 3), acknowledgedFrom: null}]);
    });
  });
});
