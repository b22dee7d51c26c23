import {describe, expect, it} from "vitest";
import {combineDayTotals, type DayTotal} from "./day-totals.js";

const totalsOf = (date: string, temperatures: number[]): DayTotal => ({
  date,
  readingCount: temperatures.length,
  avgTemperatureCelsius: temperatures.reduce((sum, t) => sum + t, 0) / temperatures.length,
  minTemperatureCelsius: Math.min(...temperatures),
  maxTemperatureCelsius: Math.max(...temperatures)
});

describe("combineDayTotals", () => {
  it("gives the totals of both sets of readings for a day they share, and keeps the days only one has", () => {
    const combined = combineDayTotals([totalsOf("2026-03-10", [20, 22]), totalsOf("2026-03-11", [5])], [totalsOf("2026-03-10", [30, 18, 21]), totalsOf("2026-03-12", [7, 9])]);
    const byDate = Object.fromEntries(combined.map((day) => [day.date, day]));
    expect(Object.keys(byDate).sort()).toEqual(["2026-03-10", "2026-03-11", "2026-03-12"]);
    const expected = totalsOf("2026-03-10", [20, 22, 30, 18, 21]);
    expect(byDate["2026-03-10"]).toMatchObject({readingCount: 5, minTemperatureCelsius: 18, maxTemperatureCelsius: 30});
    expect(byDate["2026-03-10"]!.avgTemperatureCelsius).toBeCloseTo(expected.avgTemperatureCelsius, 12);
    expect(byDate["2026-03-11"]).toEqual(totalsOf("2026-03-11", [5]));
    expect(byDate["2026-03-12"]).toEqual(totalsOf("2026-03-12", [7, 9]));
  });
});
