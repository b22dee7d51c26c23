import {describe, expect, it} from "vitest";
import {VerifiedTokenCache} from "./verified-token-cache.js";

describe("VerifiedTokenCache", () => {
  const clock = (start = 1_800_000_000_000) => {
    const c = {now: start, tick: (ms: number) => (c.now += ms)};
    return c;
  };

  it("answers a token's payload until the token expires, never after", () => {
    const c = clock();
    const cache = new VerifiedTokenCache<{sub: string; exp?: number}>(10, 3_600_000, () => c.now);
    const payload = {sub: "device-1", exp: c.now / 1000 + 60};
    cache.set("a.b.c", payload);
    expect(cache.get("a.b.c")).toBe(payload);
    c.tick(59_999);
    expect(cache.get("a.b.c")).toBe(payload);
    c.tick(1);
    expect(cache.get("a.b.c")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("keeps a long-lived token at most maxAgeMs", () => {
    const c = clock();
    const cache = new VerifiedTokenCache<{sub: string; exp?: number}>(10, 300_000, () => c.now);
    cache.set("t", {sub: "x", exp: c.now / 1000 + 86_400});
    c.tick(299_999);
    expect(cache.get("t")).toBeDefined();
    c.tick(1);
    expect(cache.get("t")).toBeUndefined();
  });

  it("does not keep a token without exp or already expired, nor an unknown one", () => {
    const c = clock();
    const cache = new VerifiedTokenCache<{sub: string; exp?: number}>(10, 300_000, () => c.now);
    cache.set("no-exp", {sub: "x"});
    cache.set("expired", {sub: "x", exp: c.now / 1000 - 1});
    expect(cache.size).toBe(0);
    expect(cache.get("never-seen")).toBeUndefined();
  });

  it("drops the least recently used token beyond maxEntries", () => {
    const c = clock();
    const cache = new VerifiedTokenCache<{sub: string; exp?: number}>(2, 300_000, () => c.now);
    const exp = c.now / 1000 + 600;
    cache.set("t1", {sub: "1", exp});
    cache.set("t2", {sub: "2", exp});
    expect(cache.get("t1")).toBeDefined(); // t2 is now the least recently used
    cache.set("t3", {sub: "3", exp});
    expect([cache.get("t1")?.sub, cache.get("t2")?.sub, cache.get("t3")?.sub]).toEqual(["1", undefined, "3"]);
  });
});
