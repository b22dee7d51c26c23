import {describe, expect, it} from "vitest";
import {assertSafeJson, MAX_JSON_DEPTH} from "./json-body.js";
import {instantOf, isStrictDate, isStrictDateTime, UuidFormat} from "./strict-formats.js";

describe("strict formats", () => {
  it.each([
    "2026-03-28T10:30:00Z",
    "2026-03-28T10:30:00.123456Z",
    "2026-03-28T10:30:00+05:30",
    "2024-02-29T23:59:59-12:00",
    "0001-01-01T00:00:00Z"
  ])("accepts the date-time %s", (value) => expect(isStrictDateTime(value)).toBe(true));

  it.each([
    ["an hour-only offset", "2026-03-28T10:30:00+05"],
    ["a leap second", "2026-12-31T23:59:60Z"],
    ["February 30 (V8 rolls it over to March)", "2026-02-30T00:00:00Z"],
    ["February 29 of a common year", "2026-02-29T00:00:00Z"],
    ["year 0000", "0000-01-01T00:00:00Z"],
    ["hour 24", "2026-03-28T24:00:00Z"],
    ["an offset of 25 hours", "2026-03-28T10:30:00+25:00"],
    ["no offset", "2026-03-28T10:30:00"],
    ["an expanded year", "+012026-03-28T10:30:00Z"],
    ["a space for T", "2026-03-28 10:30:00Z"]
  ])("refuses a date-time with %s", (_label, value) => expect(isStrictDateTime(value)).toBe(false));

  it.each([
    "2026-03-28T10:30:00Z",
    "2026-03-28T10:30:00.1Z",
    "2026-03-28T10:30:00.123456789Z",
    "2026-03-28T10:30:00.999+05:30",
    "2024-02-29T23:59:59-12:00",
    "2026-01-01T00:30:00+01:00",
    "1999-12-31T23:59:59.999-00:00",
    "0001-01-01T00:00:00Z",
    "0099-03-01T12:00:00Z",
    "9999-12-31T23:59:59.999Z"
  ])("reads %s as the instant Date.parse gives", (value) => expect(instantOf(value)).toBe(Date.parse(value)));

  it("reads no instant from a date-time it refuses", () => {
    expect(
      ["2026-02-29T00:00:00Z", "2026-03-28T10:30:00.Z", "2026-03-28T10:30:00.1234567890Z", "2026-03-28T10:30:00+05:3"].map(instantOf)
    ).toEqual([Number.NaN, Number.NaN, Number.NaN, Number.NaN]);
  });

  it("accepts real calendar days only", () => {
    expect(["2026-03-28", "2024-02-29", "0001-01-01", "9999-12-31"].every(isStrictDate)).toBe(true);
    expect(["0000-01-01", "2026-02-30", "2026-13-01", "2026-1-1", "20260101", "2026-03-28T00:00:00Z"].some(isStrictDate)).toBe(false);
  });

  it("takes a UUID in either case, never the urn: form Postgres refuses", () => {
    const uuid = new UuidFormat();
    expect(uuid.validate("0b7e7a43-3c47-4b8e-9b1b-55d2b6f0a1c4")).toBe(true);
    expect(uuid.validate("0B7E7A43-3C47-4B8E-9B1B-55D2B6F0A1C4")).toBe(true);
    expect(uuid.validate("urn:uuid:0b7e7a43-3c47-4b8e-9b1b-55d2b6f0a1c4")).toBe(false);
    expect(uuid.validate("{0b7e7a43-3c47-4b8e-9b1b-55d2b6f0a1c4}")).toBe(false);
  });
});

describe("JSON bodies", () => {
  const check = (text: string) => () => assertSafeJson(Buffer.from(text));

  it(`refuses nesting deeper than ${MAX_JSON_DEPTH} levels, counting only brackets outside strings`, () => {
    expect(check(`${"[".repeat(MAX_JSON_DEPTH)}${"]".repeat(MAX_JSON_DEPTH)}`)).not.toThrow();
    expect(check(`${"[".repeat(MAX_JSON_DEPTH + 1)}${"]".repeat(MAX_JSON_DEPTH + 1)}`)).toThrow(/deeper than/);
    expect(check(`{"a":"${"[".repeat(1000)}"}`)).not.toThrow();
    expect(check(`[${"{}".repeat(10_000)}]`)).not.toThrow();
  });

  it("refuses the escaped NUL character in any string, not an escaped backslash before u0000", () => {
    expect(check(`{"name":"a\\u0000b"}`)).toThrow(/NUL/);
    expect(check(`[{"x":["\\u0000"]}]`)).toThrow(/NUL/);
    expect(check(`{"name":"a\\\\u0000b"}`)).not.toThrow();
    expect(check(`{"name":"\\u00001"}`)).toThrow(/NUL/);
  });
});
