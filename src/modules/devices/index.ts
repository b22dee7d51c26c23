import type {Feature} from "../../common/feature.js";
import {DeviceController} from "./device.controller.js";
import {Device} from "./device.entity.js";

/** The thermometers of a tenant. */
export const devicesFeature: Feature = {
  name: "devices",
  controllers: [DeviceController],
  tenantEntities: [Device]
};
