import {describe, expect, it} from "vitest";
import {isValidTenantId, quoteTenantSchema} from "./tenant-id.js";

describe("tenant ids", () => {
  it.each(["building_a", "a", "b2", `a${"b".repeat(62)}`])("accepts %s", (id) => expect(isValidTenantId(id)).toBe(true));
  it.each(["", "A", "1abc", "_x", "public", "pg_toast", "information_schema", "a-b", 'a"b', `a${"b".repeat(63)}`, null, 3])(
    "rejects %s",
    (id) => expect(isValidTenantId(id)).toBe(false)
  );
  it("refuses to quote an invalid id", () => expect(() => quoteTenantSchema('x"; drop')).toThrow());
});
