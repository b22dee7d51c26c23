import {context, Injectable} from "@tsed/common";
import type {DeviceIdentity} from "./device-key-verifier.js";

const DEVICE_KEY = "deviceIdentity";

export class MissingDeviceContextError extends Error {
  constructor() {
    super("No device is bound to this request: the route must be @DeviceAuthenticated()");
    this.name = "MissingDeviceContextError";
  }
}

/** The device a request (or MQTT message) speaks for, bound once its key is verified; the tenant is bound in TenantContext. */
@Injectable()
export class DeviceContext {
  bind(identity: DeviceIdentity): void {
    const $ctx = context();
    if (!$ctx) throw new MissingDeviceContextError();
    $ctx.set(DEVICE_KEY, identity);
  }

  /** The bound device, or undefined on a route that is not a device's. */
  get current(): DeviceIdentity | undefined {
    return context()?.get<DeviceIdentity | undefined>(DEVICE_KEY);
  }

  get deviceId(): string {
    const identity = this.current;
    if (!identity) throw new MissingDeviceContextError();
    return identity.deviceId;
  }
}
