import {generateKeyPairSync} from "node:crypto";
import {describe, expect, it} from "vitest";
import {JwksKeySet, type SigningKeySource} from "./jwks-key-set.js";

const pem = (type: "rsa" | "ec") =>
  (type === "rsa"
    ? generateKeyPairSync("rsa", {modulusLength: 2048}).publicKey
    : generateKeyPairSync("ec", {namedCurve: "P-256"}).publicKey
  ).export({type: "spki", format: "pem"}) as string;
const RSA_1 = pem("rsa");
const RSA_2 = pem("rsa");
const EC = pem("ec");

/** A JWKS endpoint seen through JwksClient.getSigningKeys(): it counts fetches, and a test may hold one open or make it fail. */
function issuer(published: Record<string, string>) {
  const state = {
    published,
    fetches: 0,
    fail: false,
    gate: undefined as Promise<void> | undefined
  };
  const source: SigningKeySource = {
    async getSigningKeys() {
      state.fetches++;
      const snapshot = Object.entries(state.published);
      await state.gate;
      if (state.fail) throw new Error("JWKS endpoint down");
      return snapshot.map(([kid, key]) => ({kid, getPublicKey: () => key}));
    }
  };
  return {state, source};
}

function clock() {
  const c = {ms: 1_800_000_000_000, now: () => c.ms};
  return c;
}

const COOLDOWN = 30_000;
const MAX_AGE = 600_000;

describe("JwksKeySet: keys by kid, a fetch per cool-down for the unknown ones", () => {
  it("fetches the set once for a burst of lookups, known and unknown, at start", async () => {
    const {state, source} = issuer({k1: RSA_1});
    const keys = new JwksKeySet(source, {cooldownMs: COOLDOWN, maxAgeMs: MAX_AGE, now: clock().now});
    const found = await Promise.all([...Array.from({length: 100}, (_, i) => keys.get(`random-${i}`)), keys.get("k1")]);
    expect(state.fetches).toBe(1);
    expect(found.slice(0, 100).every((key) => key === undefined)).toBe(true);
    expect(found[100]?.asymmetricKeyType).toBe("rsa");
  });

  it("refuses unknown kids without a fetch during the cool-down, then fetches once, and finds a key published since", async () => {
    const {state, source} = issuer({k1: RSA_1});
    const c = clock();
    const keys = new JwksKeySet(source, {cooldownMs: COOLDOWN, maxAgeMs: MAX_AGE, now: c.now});
    await keys.get("k1");
    state.published = {k1: RSA_1, k2: RSA_2};
    c.ms += COOLDOWN - 1;
    for (let i = 0; i < 1_000; i++) expect(await keys.get(`random-${i}`)).toBeUndefined();
    expect(await keys.get("k2")).toBeUndefined();
    expect(state.fetches).toBe(1);
    c.ms += 1;
    const [k2, ...flood] = await Promise.all([keys.get("k2"), ...Array.from({length: 50}, (_, i) => keys.get(`again-${i}`))]);
    expect(k2).toBeDefined();
    expect(flood.every((key) => key === undefined)).toBe(true);
    expect(state.fetches).toBe(2);
  });

  it("answers a known kid at once while a fetch for an unknown one hangs", async () => {
    const {state, source} = issuer({k1: RSA_1});
    const c = clock();
    const keys = new JwksKeySet(source, {cooldownMs: COOLDOWN, maxAgeMs: MAX_AGE, now: c.now});
    await keys.get("k1");
    c.ms += COOLDOWN;
    let open!: () => void;
    state.gate = new Promise<void>((resolve) => (open = resolve));
    const unknown = keys.get("random");
    const known = await Promise.race([keys.get("k1"), new Promise((resolve) => setTimeout(() => resolve("delayed"), 200))]);
    expect(known).not.toBe("delayed");
    expect(known).toBeDefined();
    open();
    expect(await unknown).toBeUndefined();
    expect(state.fetches).toBe(2);
  });

  it("keeps answering from an aged set while it fetches a fresh one in the background, and keeps the old set if that fails", async () => {
    const {state, source} = issuer({k1: RSA_1});
    const c = clock();
    const errors: unknown[] = [];
    const keys = new JwksKeySet(source, {cooldownMs: COOLDOWN, maxAgeMs: MAX_AGE, now: c.now, onFetchError: (e) => errors.push(e)});
    await keys.get("k1");
    c.ms += MAX_AGE;
    state.fail = true;
    expect(await keys.get("k1")).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(state.fetches).toBe(2);
    expect(errors).toHaveLength(1);
    expect(await keys.get("k1")).toBeDefined();
    // A key the issuer stopped publishing goes with the next successful fetch.
    state.fail = false;
    state.published = {k2: RSA_2};
    c.ms += COOLDOWN;
    await keys.get("k1");
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await keys.get("k1")).toBeUndefined();
    expect(await keys.get("k2")).toBeDefined();
  });

  it("keeps RSA keys only", async () => {
    const {source} = issuer({rsa: RSA_1, ec: EC});
    const keys = new JwksKeySet(source, {cooldownMs: COOLDOWN, maxAgeMs: MAX_AGE, now: clock().now});
    expect(await keys.get("rsa")).toBeDefined();
    expect(await keys.get("ec")).toBeUndefined();
  });
});
