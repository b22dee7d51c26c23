import {createHash, randomBytes, randomUUID, timingSafeEqual} from "node:crypto";

/**
 * A device key: `stdk_<key id>_<secret>`.
 * - The key id (a UUID) is public: it names the key in the key list, it is the MQTT username, and
 *   it is what the platform-level lookup (`public.device_keys`, primary key) finds the tenant and
 *   device by. A key that named its tenant instead would still need a lookup for its device and
 *   revocation, and would put the tenant id in every device's configuration and log line.
 * - The secret is 256 random bits (43 base64url characters). Only its SHA-256 is stored: for a
 *   secret that cannot be guessed, a slow password hash (bcrypt, argon2) adds nothing but
 *   milliseconds per message; SHA-256 costs about a microsecond.
 * - The `stdk_` prefix lets secret scanners and people recognise a leaked key.
 */
export const DEVICE_KEY_PREFIX = "stdk_";
const KEY_PATTERN = /^stdk_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export interface ParsedDeviceKey {
  keyId: string;
  /** SHA-256 of the whole key text: what the table stores. */
  digest: Buffer;
}

/** A new key: its id, the text shown once, and the digest to store. */
export function generateDeviceKey(): {keyId: string; key: string; digest: Buffer} {
  const keyId = randomUUID();
  const key = `${DEVICE_KEY_PREFIX}${keyId}_${randomBytes(32).toString("base64url")}`;
  return {keyId, key, digest: digestOf(key)};
}

/** The key's id and digest, or undefined when the text is not a device key at all. */
export function parseDeviceKey(text: string): ParsedDeviceKey | undefined {
  const match = KEY_PATTERN.exec(text);
  return match ? {keyId: match[1]!, digest: digestOf(text)} : undefined;
}

/** Constant-time: how much of a digest matches must not show in the time the answer takes. */
export function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function digestOf(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}
