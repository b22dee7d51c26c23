import type {EntityClass} from "@mikro-orm/core";
import type {MqttPublishHandler} from "../platform/mqtt/mqtt-server.js";

/**
 * What a feature (a folder of src/modules) contributes to the application. Each feature's
 * index.ts exports one; src/modules/index.ts lists them, and the server is assembled from that
 * list alone: controllers mounted under /api/v1, entities of each MikroORM context, BullMQ queues.
 * Providers nothing injects by type (hooks, job handlers, schedules) are loaded by the feature's
 * index.ts importing them.
 */
export interface Feature {
  name: string;
  /** Controllers mounted under /api/v1. */
  controllers?: readonly (new (...args: never[]) => object)[];
  /** Entities stored in each tenant's schema (`schema: "*"`). */
  tenantEntities?: readonly EntityClass<object>[];
  /** Entities of the analytics database. */
  analyticsEntities?: readonly EntityClass<object>[];
  /** BullMQ queues the feature enqueues to and works on. */
  queues?: readonly string[];
  /** What the MQTT endpoint (platform/mqtt) hands devices' readings to; one feature at most. */
  mqttHandler?: new () => MqttPublishHandler;
}
