import {
  CollectionOf,
  Default,
  Description,
  Enum,
  Example,
  Format,
  Integer,
  MaxItems,
  MaxLength,
  Maximum,
  MinItems,
  MinLength,
  Minimum,
  Nullable,
  Optional,
  Pattern,
  Required,
  UniqueItems
} from "@tsed/schema";
import {DEFAULT_EVENT_TYPES, SUBSCRIBABLE_EVENT_TYPES} from "./webhook-event-types.js";

export const MAX_URL_LENGTH = 2_000;

export class WebhookEndpointCreate {
  @Required()
  @MinLength(1)
  @MaxLength(MAX_URL_LENGTH)
  @Description(
    "Where events are POSTed: `https` to a public address (plain `http` and private addresses only with WEBHOOK_ALLOW_PRIVATE=true)"
  )
  @Example("https://hooks.example.com/smart-thermo")
  url!: string;

  @Optional()
  @MinItems(1)
  @MaxItems(SUBSCRIBABLE_EVENT_TYPES.length)
  @UniqueItems()
  @CollectionOf(String)
  @Enum(...SUBSCRIBABLE_EVENT_TYPES)
  @Default(DEFAULT_EVENT_TYPES)
  @Description("Event types sent to this endpoint; `alert.*` is every alert event (the default)")
  eventTypes?: string[];

  @Optional()
  @Nullable(String)
  @MaxLength(500)
  description?: string | null;
}

export class WebhookEndpointUpdate {
  @Optional()
  @MinLength(1)
  @MaxLength(MAX_URL_LENGTH)
  url?: string;

  @Optional()
  @MinItems(1)
  @MaxItems(SUBSCRIBABLE_EVENT_TYPES.length)
  @UniqueItems()
  @CollectionOf(String)
  @Enum(...SUBSCRIBABLE_EVENT_TYPES)
  eventTypes?: string[];

  @Optional()
  @Nullable(String)
  @MaxLength(500)
  description?: string | null;

  @Optional()
  @Description("false stops deliveries (with `disabledReason`); true starts them again and forgets why it was disabled")
  isEnabled?: boolean;

  @Optional()
  @MaxLength(500)
  @Description("Why it is disabled (with `isEnabled: false`)")
  disabledReason?: string;
}

export class WebhookEndpoint {
  @Required() @Format("uuid") id!: string;
  @Required() @Example("https://hooks.example.com/smart-thermo") url!: string;
  @Required() @Nullable(String) description!: string | null;
  @Required() @CollectionOf(String) @Example(DEFAULT_EVENT_TYPES) eventTypes!: string[];
  @Required() isEnabled!: boolean;

  @Required()
  @Nullable(String)
  @Description("Why deliveries stopped: an admin's reason, a 410 from the receiver, or 5 days of failures")
  disabledReason!: string | null;

  @Required()
  @Nullable(Date)
  @Format("date-time")
  @Description("Until when the secret replaced by the last rotation still signs, beside the new one")
  previousSecretExpiresAt!: Date | null;

  @Required()
  @Nullable(Date)
  @Format("date-time")
  @Description("Since when every attempt failed; null while it succeeds")
  failingSince!: Date | null;
  @Required() @Format("date-time") createdAt!: Date;
  @Required() @Format("date-time") updatedAt!: Date;
}

export class WebhookEndpointCreated extends WebhookEndpoint {
  @Required()
  @Pattern(/^whsec_[A-Za-z0-9+/=]+$/)
  @Description("The signing secret, shown this once (Standard Webhooks: base64 after `whsec_`)")
  @Example("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
  secret!: string;
}

export class WebhookSecretRotated {
  @Required() @Pattern(/^whsec_[A-Za-z0-9+/=]+$/) @Description("The new secret, shown this once") secret!: string;
  @Required() @Format("date-time") @Description("The old secret also signs until then") previousSecretExpiresAt!: Date;
}

export class WebhookEndpointList {
  @Required() @CollectionOf(WebhookEndpoint) items!: WebhookEndpoint[];
}

export class EventAccepted {
  @Required() @Format("uuid") @Description("The event's id: the `webhook-id` the receiver gets") eventId!: string;
}

export class DeliveryReplayed {
  @Required() @Format("uuid") deliveryId!: string;
}

export class DeliveryQuery {
  @Optional() @Enum("pending", "succeeded", "failed", "suppressed") status?: "pending" | "succeeded" | "failed" | "suppressed";
  @Integer() @Minimum(1) @Maximum(1_000_000) @Default(1) page: number = 1;
}

export class DeliveryAttempt {
  @Required() @Format("date-time") attemptedAt!: Date;
  @Required() @Nullable(Number) @Integer() @Description("The receiver's status code; null when it did not answer") statusCode!:
    number | null;
  @Required() @Nullable(String) @Description("Why no answer came (refused, timed out, address not allowed)") error!: string | null;
  @Required() @Integer() durationMs!: number;
}

export class Delivery {
  @Required() @Format("uuid") id!: string;
  @Required() @Format("uuid") eventId!: string;
  @Required() eventType!: string;

  @Required()
  @Enum("pending", "succeeded", "failed", "suppressed")
  @Description("`suppressed`: held back by a silence, never sent (replay sends it)")
  status!: string;

  @Required() @Integer() attemptCount!: number;
  @Required()
  @Nullable(Date)
  @Format("date-time")
  @Description("When the next attempt is due; null when none is")
  nextAttemptAt!: Date | null;
  @Required() @Format("date-time") createdAt!: Date;
  @Required() @CollectionOf(DeliveryAttempt) @Description("Every attempt, oldest first") attempts!: DeliveryAttempt[];
}

export class DeliveryPage {
  @Required() @CollectionOf(Delivery) @Description("Newest first") items!: Delivery[];
  @Required() @Integer() total!: number;
  @Required() @Integer() page!: number;
  @Required() @Integer() pageSize!: number;
}
