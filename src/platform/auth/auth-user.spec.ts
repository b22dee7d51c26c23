import {describe, expect, it} from "vitest";
import {hasRole, toAuthUser} from "./auth-user.js";

const valid = {sub: "alice", exp: 2_000_000_000, tenantId: "building_a"};

describe("toAuthUser: what a verified token says about its caller", () => {
  it("takes the strongest of viewer, operator, admin from realm_access.roles, whatever else is there", () => {
    expect(toAuthUser({...valid, realm_access: {roles: ["offline_access", "admin", "viewer"]}}, "tenantId", "operator")?.role).toBe(
      "admin"
    );
    expect(toAuthUser({...valid, realm_access: {roles: ["viewer"]}}, "tenantId", "operator")?.role).toBe("viewer");
  });

  it("gives AUTH_DEFAULT_ROLE to a token with none of them", () => {
    expect(toAuthUser({...valid, realm_access: {roles: ["user", "uma_authorization"]}}, "tenantId", "viewer")?.role).toBe("viewer");
    expect(toAuthUser({...valid}, "tenantId", "operator")?.role).toBe("operator");
    expect(toAuthUser({...valid, realm_access: {roles: "admin"}}, "tenantId", "viewer")?.role).toBe("viewer");
  });

  it("accepts an access token (typ Bearer, or no typ) and refuses ID, refresh and any other typ", () => {
    expect(toAuthUser({...valid, typ: "Bearer"}, "tenantId", "operator")).toMatchObject({subject: "alice", tenantClaim: "building_a"});
    expect(toAuthUser({...valid}, "tenantId", "operator")).toBeDefined();
    for (const typ of ["ID", "Refresh", "Logout", "bearer", "", null, 1])
      expect(toAuthUser({...valid, typ}, "tenantId", "operator"), String(typ)).toBeUndefined();
  });

  it("refuses a token without subject or expiry", () => {
    expect(toAuthUser({exp: valid.exp}, "tenantId", "operator")).toBeUndefined();
    expect(toAuthUser({sub: "", exp: valid.exp}, "tenantId", "operator")).toBeUndefined();
    expect(toAuthUser({sub: "alice"}, "tenantId", "operator")).toBeUndefined();
  });

  it("orders the roles: each includes the weaker ones", () => {
    expect(hasRole("admin", "viewer")).toBe(true);
    expect(hasRole("operator", "operator")).toBe(true);
    expect(hasRole("operator", "admin")).toBe(false);
    expect(hasRole("viewer", "operator")).toBe(false);
  });
});
