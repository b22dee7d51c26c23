import {useDecorators} from "@tsed/core";
import {UseBefore} from "@tsed/common";
import {Returns, Security} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {DeviceKeyAuthMiddleware} from "./device-key-auth.middleware.js";

/** The OpenAPI security scheme of device keys (declared in tsed.config.ts). */
export const DEVICE_KEY_SCHEME = "deviceKey";

/**
 * A route a device calls with its own key (`Authorization: Device <key>`) instead of a user's
 * token: the tenant and device are bound from the key before any other middleware runs.
 */
export function DeviceAuthenticated(): MethodDecorator {
  return useDecorators(
    UseBefore(DeviceKeyAuthMiddleware),
    Security(DEVICE_KEY_SCHEME),
    Returns(401, ErrorBody).Description("Missing, malformed, unknown or revoked device key")
  ) as MethodDecorator;
}
