import type {Feature} from "../common/feature.js";
import {alertsFeature} from "./alerts/index.js";
import {deviceClientsFeature} from "./device-clients/index.js";
import {devicesFeature} from "./devices/index.js";
import {notificationsFeature} from "./notifications/index.js";
import {readingsFeature} from "./readings/index.js";
import {statsFeature} from "./stats/index.js";
import {tenantsFeature} from "./tenants/index.js";
import {usersFeature} from "./users/index.js";

/**
 * The application's features. A feature may use the ones listed before it, never one after it
 * (.dependency-cruiser.cjs enforces this order): readings write alerts and stats, never the reverse.
 */
export const features: readonly Feature[] = [
  usersFeature,
  devicesFeature,
  alertsFeature,
  notificationsFeature,
  statsFeature,
  readingsFeature,
  deviceClientsFeature,
  tenantsFeature
];

/** Controllers mounted under /api/v1, in the order the features list them. */
export const apiControllers = features.flatMap((feature) => feature.controllers ?? []);

/** BullMQ queues of every feature. */
export const queues = features.flatMap((feature) => feature.queues ?? []);

/** What the MQTT endpoint hands devices' readings to (undefined: no feature takes MQTT). */
export const mqttHandler = features.find((feature) => feature.mqttHandler)?.mqttHandler;
