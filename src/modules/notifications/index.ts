import type {Feature} from "../../common/feature.js";
import "./notifications.jobs.js";
import {NOTIFICATIONS_QUEUE} from "./notifications.queue.js";
import {SilenceController} from "./silence.controller.js";
import {StreamController} from "./stream.controller.js";
import {StreamTokenController} from "./stream-token.controller.js";
import {WebhookController} from "./webhook.controller.js";

/**
 * Events out of the outbox (platform/outbox): webhooks with a delivery log, silences, and the
 * live stream. See docs/api.md, "Receiving webhooks" and "Live stream".
 */
export const notificationsFeature: Feature = {
  name: "notifications",
  controllers: [WebhookController, SilenceController, StreamController, StreamTokenController],
  queues: [NOTIFICATIONS_QUEUE]
};
