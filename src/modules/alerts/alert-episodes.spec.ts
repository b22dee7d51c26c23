import {describe, expect, it} from "vitest";
import {AlertCondition} from "./alert-rule.entity.js";
import {planEpisodes, type RuleState, type EpisodeReading, violates} from "./alert-episodes.js";

const at = (minute: number) => new Date(Date.UTC(2026, 2, 28, 10, minute));
let nextId = 1;
const reading = (minute: number, temperatureCelsius: number): EpisodeReading => ({id: String(nextId++), temperatureCelsius, recordedAt: at(minute)});
const above30 = (open: RuleState["open"] = null, closed: RuleState["closed"] = []): RuleState => ({ruleId: "r-above", condition: AlertCondition.ABOVE, thresholdCelsius: 30, open, closed});
const openSince = (firedAt: number, lastReadingAt: number) => ({id: "a1", firedAt: at(firedAt), lastReadingAt: at(lastReadingAt), resolvedAt: null});

describe("alert episodes", () => {
  it("treats the threshold itself as inside, for both conditions", () => {
    expect(violates(AlertCondition.ABOVE, 30, 30)).toBe(false);
    expect(violates(AlertCondition.ABOVE, 30, 30.01)).toBe(true);
    expect(violates(AlertCondition.BELOW, 2, 2)).toBe(false);
    expect(violates(AlertCondition.BELOW, 2, 1.99)).toBe(true);
  });

  it("walks a batch in recordedAt order: open, update, resolve, open again", () => {
    const r1 = reading(1, 31);
    const r2 = reading(2, 35);
    const r3 = reading(3, 29);
    const r4 = reading(4, 33);
    const plan = planEpisodes([above30()], [r3, r4, r2, r1], null);
    expect(plan.advances).toEqual([]);
    expect(plan.openings).toEqual([
      {ruleId: "r-above", readingId: r1.id, temperatureCelsius: 31, firedAt: at(1), lastReadingAt: at(2), peakTemperatureCelsius: 35, readingCount: 2, resolvedAt: at(3)},
      {ruleId: "r-above", readingId: r4.id, temperatureCelsius: 33, firedAt: at(4), lastReadingAt: at(4), peakTemperatureCelsius: 33, readingCount: 1, resolvedAt: null}
    ]);
  });

  it("adds violations to an alert that was already open and resolves it with the first newer reading inside", () => {
    const plan = planEpisodes([above30(openSince(4, 5))], [reading(6, 32), reading(7, 38), reading(8, 30), reading(9, 31)], at(5));
    expect(plan.advances).toEqual([{alertId: "a1", ruleId: "r-above", condition: AlertCondition.ABOVE, wasResolved: false, addedReadings: 2, peakTemperatureCelsius: 38, lastReadingAt: at(7), resolvedAt: at(8)}]);
    expect(plan.openings).toHaveLength(1);
    expect(plan.openings[0]).toMatchObject({firedAt: at(9), resolvedAt: null, readingCount: 1});
  });

  it("uses the lowest temperature as the peak of a `below` episode", () => {
    const below: RuleState = {ruleId: "r-below", condition: AlertCondition.BELOW, thresholdCelsius: 2, open: null, closed: []};
    const plan = planEpisodes([below], [reading(1, 1.5), reading(2, -3), reading(3, 0)], null);
    expect(plan.openings).toEqual([expect.objectContaining({peakTemperatureCelsius: -3, readingCount: 3, resolvedAt: null, temperatureCelsius: 1.5})]);
  });

  it("ignores a late reading inside the threshold: it cannot end an episode with newer violations", () => {
    const plan = planEpisodes([above30(openSince(8, 10))], [reading(9, 20)], at(10));
    expect(plan).toEqual({advances: [], openings: []});
  });

  it("counts a late violation into the open episode it falls in, without moving its end backwards", () => {
    const plan = planEpisodes([above30(openSince(3, 10))], [reading(4, 40), reading(11, 25)], at(10));
    expect(plan.advances).toEqual([expect.objectContaining({alertId: "a1", wasResolved: false, addedReadings: 1, peakTemperatureCelsius: 40, lastReadingAt: at(4), resolvedAt: at(11)})]);
  });

  it("counts a late violation into the resolved episode whose span contains it, else into the open one", () => {
    const past = {id: "past", firedAt: at(1), lastReadingAt: at(3), resolvedAt: at(5)};
    const plan = planEpisodes([above30(openSince(8, 9), [past])], [reading(2, 45), reading(6, 50), reading(7, 33)], at(9));
    expect(plan.advances).toEqual([
      expect.objectContaining({alertId: "past", wasResolved: true, addedReadings: 1, peakTemperatureCelsius: 45, resolvedAt: null}),
      expect.objectContaining({alertId: "a1", wasResolved: false, addedReadings: 2, peakTemperatureCelsius: 50, lastReadingAt: at(7), resolvedAt: null})
    ]);
    expect(plan.openings).toEqual([]);
  });

  it("stores a late violation outside every episode without alerting", () => {
    const past = {id: "past", firedAt: at(1), lastReadingAt: at(3), resolvedAt: at(5)};
    expect(planEpisodes([above30(null, [past])], [reading(6, 50)], at(9))).toEqual({advances: [], openings: []});
  });

  it("does not open an episode from a reading older than the device's newest stored reading", () => {
    expect(planEpisodes([above30()], [reading(4, 40)], at(10))).toEqual({advances: [], openings: []});
    expect(planEpisodes([above30()], [reading(4, 40), reading(11, 41)], at(10)).openings).toEqual([expect.objectContaining({firedAt: at(11), readingCount: 1})]);
  });

  it("leaves rules alone when nothing crosses them", () => {
    expect(planEpisodes([above30()], [reading(1, 21), reading(2, 30)], null)).toEqual({advances: [], openings: []});
    expect(planEpisodes([], [reading(1, 99)], null)).toEqual({advances: [], openings: []});
  });
});
