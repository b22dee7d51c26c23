/** The events a webhook endpoint can subscribe to (docs/api.md, "Receiving webhooks"). */
export const ALERT_EVENT_TYPES = ["alert.fired", "alert.resolved", "alert.acknowledged", "alert.retracted", "alert.reminder"] as const;

/** What `eventTypes` may hold: one of ALERT_EVENT_TYPES, or `alert.*` for all of them. */
export const SUBSCRIBABLE_EVENT_TYPES = ["alert.*", ...ALERT_EVENT_TYPES] as const;

export const DEFAULT_EVENT_TYPES = ["alert.*"];

/** Whether an endpoint subscribed to `subscribed` receives an event of `type` (`prefix.*` matches the prefix's types). */
export function matchesEventTypes(subscribed: readonly string[], type: string): boolean {
  return subscribed.some((pattern) => (pattern.endsWith(".*") ? type.startsWith(pattern.slice(0, -1)) : pattern === type));
}
