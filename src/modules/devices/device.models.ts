import {CollectionOf, Integer, Required} from "@tsed/schema";
import {Device} from "./device.entity.js";

export class DevicePage {
  @Required() @CollectionOf(Device) items!: Device[];
  @Required() @Integer() total!: number;
  @Required() @Integer() page!: number;
  @Required() @Integer() pageSize!: number;
}

/** Fields a client may change with PATCH (the `update` group of Device). */
export const DEVICE_UPDATABLE = ["name", "location", "isActive"] as const satisfies readonly (keyof Device)[];
