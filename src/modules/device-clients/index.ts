import type {Feature} from "../../common/feature.js";
import {DeviceReadingController} from "./device-reading.controller.js";
import {MqttReadingsIngest} from "./mqtt-readings-ingest.js";

/**
 * Devices as clients: a device writes its own readings with its key, over HTTP
 * (`POST /device/readings`) or MQTT (MqttReadingsIngest, served by platform/mqtt), through the
 * readings feature's write path.
 */
export const deviceClientsFeature: Feature = {
  name: "device-clients",
  controllers: [DeviceReadingController],
  mqttHandler: MqttReadingsIngest
};
