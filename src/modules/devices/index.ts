import type {Feature} from "../../common/feature.js";
import {DeviceKeyController} from "./device-key.controller.js";
import {DeviceController} from "./device.controller.js";
import {Device} from "./device.entity.js";

/** The thermometers of a tenant, and their keys (a device's own credentials). */
export const devicesFeature: Feature = {
  name: "devices",
  controllers: [DeviceController, DeviceKeyController],
  tenantEntities: [Device]
};
