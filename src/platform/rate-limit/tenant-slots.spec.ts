import {describe, expect, it} from "vitest";
import {TenantSlots} from "./tenant-slots.js";

describe("TenantSlots", () => {
  it("gives each tenant at most `limit` slots, independently of the others, and takes each back once", () => {
    const slots = new TenantSlots(() => 2);
    const a1 = slots.tryTake("a")!;
    const a2 = slots.tryTake("a")!;
    expect(slots.tryTake("a")).toBeUndefined();
    expect(slots.tryTake("b")).toBeDefined();
    a1();
    a1(); // a second release of the same slot frees nothing more
    expect(slots.held("a")).toBe(1);
    expect(slots.tryTake("a")).toBeDefined();
    expect(slots.tryTake("a")).toBeUndefined();
    a2();
    expect(slots.held("a")).toBe(1);
  });
});
