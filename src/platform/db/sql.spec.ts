import {describe, expect, it} from "vitest";
import {MAX_PREPARED_STATEMENTS, pgArray, preparedStatementName} from "./sql.js";

describe("preparedStatementName", () => {
  it("names a statement by its text: the same text the same name, another text another, within Postgres' 63 bytes", () => {
    const a = preparedStatementName(`select 1 from "tenant_a"."devices" where "id" = ?`);
    expect(a).toMatch(/^st_[0-9a-f]{40}$/);
    expect(preparedStatementName(`select 1 from "tenant_a"."devices" where "id" = ?`)).toBe(a);
    expect(preparedStatementName(`select 1 from "tenant_b"."devices" where "id" = ?`)).not.toBe(a);
    expect(Buffer.byteLength(a!)).toBeLessThanOrEqual(63);
  });

  it("stops naming new statements past MAX_PREPARED_STATEMENTS, and keeps the names it gave", () => {
    const first = preparedStatementName("select 'first'");
    for (let i = 0; i < MAX_PREPARED_STATEMENTS; i++) preparedStatementName(`select ${i}`);
    expect(preparedStatementName("select 'one too many'")).toBeUndefined();
    expect(preparedStatementName("select 'first'")).toBe(first);
  });
});

describe("pgArray", () => {
  it("writes numbers, NULLs and quoted strings as one Postgres array literal", () => {
    expect(pgArray([21.5, null, undefined, -3])).toBe("{21.5,NULL,NULL,-3}");
    expect(pgArray(['a"b', "c\\d"])).toBe('{"a\\"b","c\\\\d"}');
    expect(() => pgArray([Number.NaN])).toThrow(RangeError);
  });
});
