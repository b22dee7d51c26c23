import {describe, expect, it} from "vitest";
import {AlertCondition} from "../alerts/alert-rule.entity.js";
import {AlertPathHint} from "./alert-path-hint.js";

const at = (temperatureCelsius: number) => ({
  temperatureCelsius,
  humidity: null,
  batteryLevel: null,
  recordedAt: new Date("2026-03-01T00:00:00Z")
});
const above30 = {condition: AlertCondition.ABOVE, thresholdCelsius: 30};
const below5 = {condition: AlertCondition.BELOW, thresholdCelsius: 5};

describe("AlertPathHint", () => {
  it("expects nothing of a device it has not seen: the lone statement decides", () => {
    expect(new AlertPathHint().expectsAlertChange("t/d", [at(99)])).toBe(false);
  });

  it("expects an alert change when a reading crosses a rule the device's last write saw, in either direction", () => {
    const hint = new AlertPathHint();
    hint.remember("t/d", [above30, below5], false);
    expect(hint.expectsAlertChange("t/d", [at(20), at(25)])).toBe(false);
    expect(hint.expectsAlertChange("t/d", [at(20), at(30.01)])).toBe(true);
    expect(hint.expectsAlertChange("t/d", [at(4.99)])).toBe(true);
    // At the threshold is not across it (violates: strictly above / below).
    expect(hint.expectsAlertChange("t/d", [at(30), at(5)])).toBe(false);
    expect(hint.expectsAlertChange("t/other", [at(99)])).toBe(false);
  });

  it("expects one while an episode is open, whatever the readings, and forgets it when told it closed", () => {
    const hint = new AlertPathHint();
    hint.remember("t/d", [above30], true);
    expect(hint.expectsAlertChange("t/d", [at(20)])).toBe(true);
    hint.remember("t/d", [above30], false);
    expect(hint.expectsAlertChange("t/d", [at(20)])).toBe(false);
    hint.remember("t/d", [], false);
    expect(hint.expectsAlertChange("t/d", [at(99)])).toBe(false);
  });
});

describe("AlertPathHint's memory", () => {
  it("forgets the least recently written device past its bound, and only that one", () => {
    const hint = new AlertPathHint();
    hint.remember("t/first", [above30], false);
    for (let i = 0; i < 9_999; i++) hint.remember(`t/${i}`, [above30], false);
    // Written again: now the most recent.
    hint.remember("t/first", [above30], false);
    hint.remember("t/one-too-many", [above30], false);
    expect(hint.expectsAlertChange("t/first", [at(99)])).toBe(true);
    expect(hint.expectsAlertChange("t/0", [at(99)]), "the least recently written").toBe(false);
    expect(hint.expectsAlertChange("t/1", [at(99)])).toBe(true);
    expect(hint.expectsAlertChange("t/one-too-many", [at(99)])).toBe(true);
  });
});
