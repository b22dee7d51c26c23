import {randomBytes} from "node:crypto";
import {Webhook} from "standardwebhooks";

/** A new signing secret as Standard Webhooks spells it: `whsec_` + base64 of 24 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString("base64")}`;
}

/**
 * The Standard Webhooks headers of one attempt: `webhook-id` (the event id, the receiver's
 * idempotency key), `webhook-timestamp` (this attempt, unix seconds) and `webhook-signature`, one
 * `v1,<base64>` per secret (two, space-separated, while a rotated-out secret still signs).
 */
export function signedHeaders(eventId: string, body: string, secrets: readonly string[], at = new Date()): Record<string, string> {
  return {
    "webhook-id": eventId,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": secrets.map((secret) => new Webhook(secret).sign(eventId, at, body)).join(" ")
  };
}
