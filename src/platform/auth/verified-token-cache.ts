/** Verified tokens kept at most this long: no longer than a key that left the JWKS stays in use (JWKS_MAX_AGE_MS). */
export const VERIFIED_TOKEN_MAX_AGE_MS = 5 * 60_000;
export const VERIFIED_TOKEN_MAX_ENTRIES = 10_000;

/**
 * What was learnt from tokens already verified (signature, algorithm, issuer, audience, expiry),
 * by their exact text: a device or an app sending the same token many times a minute costs one
 * RS256 verification every few minutes instead of one per request. Any change to a token changes
 * its text, so a hit is a token that was verified before. An entry lasts until the token's `exp`
 * (never longer: no clock tolerance here) and at most `maxAgeMs`; the least recently used go first
 * beyond `maxEntries`. (A map with a TTL and an LRU order: small enough to own, see the spec.)
 */
export class VerifiedTokenCache<T extends {exp?: unknown}> {
  private readonly entries = new Map<string, {value: T; expiresAtMs: number}>();

  constructor(
    readonly maxEntries = VERIFIED_TOKEN_MAX_ENTRIES,
    readonly maxAgeMs = VERIFIED_TOKEN_MAX_AGE_MS,
    private readonly now: () => number = Date.now
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(token: string): T | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    this.entries.delete(token);
    if (entry.expiresAtMs <= this.now()) return undefined;
    this.entries.set(token, entry); // most recently used last
    return entry.value;
  }

  set(token: string, value: T): void {
    if (typeof value.exp !== "number") return;
    const now = this.now();
    const expiresAtMs = Math.min(value.exp * 1000, now + this.maxAgeMs);
    if (expiresAtMs <= now) return;
    this.entries.delete(token);
    this.entries.set(token, {value, expiresAtMs});
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }
}
