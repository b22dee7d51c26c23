import {createPublicKey, type KeyObject} from "node:crypto";

/** What JwksKeySet needs of jwks-rsa's JwksClient: the whole published set in one fetch. */
export interface SigningKeySource {
  getSigningKeys(): Promise<{kid: string; getPublicKey(): string}[]>;
}

export interface JwksKeySetOptions {
  /** At most one fetch per this long for a `kid` the set does not have. */
  cooldownMs: number;
  /** A set older than this is fetched again in the background (a key rotated away stops working then). */
  maxAgeMs: number;
  /** A failed fetch (the set held so far stays in use). */
  onFetchError?: (error: unknown) => void;
  now?: () => number;
}

/**
 * The issuer's RSA verification keys by `kid`, fetched through jwks-rsa's JwksClient as a whole
 * set (`getSigningKeys()`). Written by hand around the client because jwks-rsa's own `cache` and
 * `rateLimit` wrap the lookup of one `kid`: its rate limit is a single bucket for every lookup and
 * its cache does not remember a miss, so a flood of tokens naming random key ids (they need no
 * valid signature to get this far) spends the budget that tokens signed with a real key need, and
 * locks them out.
 *
 * Here a `kid` the set holds is answered at once, whatever else is going on. A `kid` it lacks
 * makes it fetch the set again at most once per `cooldownMs` (counted from the last fetch,
 * failed or not, so a flood cannot hammer the identity provider either), every caller joining
 * the one fetch in flight; in between, an unknown `kid` is refused without a fetch. A set older
 * than `maxAgeMs` keeps answering while a fresh one is fetched in the background: an identity
 * provider that is down does not log everybody out, and a key it stopped publishing stops working
 * as soon as it answers again.
 */
export class JwksKeySet {
  private keys = new Map<string, KeyObject>();
  private fetchedAtMs = Number.NEGATIVE_INFINITY;
  private attemptedAtMs = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(
    private readonly source: SigningKeySource,
    private readonly options: JwksKeySetOptions
  ) {
    this.now = options.now ?? Date.now;
  }

  /** The RSA public key named `kid`, or undefined when the issuer does not publish one (as far as the cool-down lets us know). */
  async get(kid: string): Promise<KeyObject | undefined> {
    const known = this.keys.get(kid);
    if (known) {
      if (this.now() - this.fetchedAtMs >= this.options.maxAgeMs) void this.refresh();
      return known;
    }
    await this.refresh();
    return this.keys.get(kid);
  }

  /** Joins the fetch in flight, or starts one when the last is a cool-down ago; otherwise does nothing. */
  private refresh(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    if (this.now() - this.attemptedAtMs < this.options.cooldownMs) return Promise.resolve();
    this.attemptedAtMs = this.now();
    this.inFlight = this.source
      .getSigningKeys()
      .then(
        (published) => {
          const keys = new Map<string, KeyObject>();
          for (const key of published) {
            const publicKey = createPublicKey(key.getPublicKey());
            // RS256 only: an EC key published beside the RSA ones never verifies our tokens.
            if (typeof key.kid === "string" && publicKey.asymmetricKeyType === "rsa") keys.set(key.kid, publicKey);
          }
          this.keys = keys;
          this.fetchedAtMs = this.now();
        },
        (error: unknown) => this.options.onFetchError?.(error)
      )
      .finally(() => {
        this.inFlight = undefined;
      });
    return this.inFlight;
  }
}
