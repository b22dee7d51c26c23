import {Context, Inject, Middleware, type MiddlewareMethods} from "@tsed/common";
import {Unauthorized} from "@tsed/exceptions";
import {ServiceUnavailableError} from "../../common/errors.js";
import {TenantContext} from "../tenancy/tenant-context.js";
import {DeviceContext} from "./device-context.js";
import {DeviceKeyVerifier} from "./device-key-verifier.js";

export const DEVICE_AUTH_SCHEME = "Device";

/**
 * `Authorization: Device <key>`: verifies the key (DeviceKeyVerifier) and binds the request to the
 * key's tenant and device, which come from the key alone (never from the path or the body). A
 * missing, malformed, unknown or revoked key is a 401 that does not say which of these it was.
 * The tenant's schema exists: the key was created by a request of that tenant.
 */
@Middleware()
export class DeviceKeyAuthMiddleware implements MiddlewareMethods {
  @Inject()
  private verifier!: DeviceKeyVerifier;

  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private device!: DeviceContext;

  async use(@Context() $ctx: Context) {
    const header = String($ctx.request.headers.authorization ?? "");
    const match = /^Device +(\S+)$/i.exec(header);
    let identity;
    try {
      identity = match ? await this.verifier.verify(match[1]!) : null;
    } catch (error) {
      // A fixed message: the driver's text (`connect ECONNREFUSED <host>:5432`) would tell an
      // unauthenticated caller where the database is. The cause goes to the log (error filter).
      throw new ServiceUnavailableError("Device keys cannot be checked now; retry later", 5, {cause: error});
    }
    if (!identity) {
      const unauthorized = new Unauthorized("Missing, malformed, unknown or revoked device key");
      unauthorized.setHeaders({"WWW-Authenticate": `${DEVICE_AUTH_SCHEME} realm="smart-thermo"`});
      throw unauthorized;
    }
    this.tenant.bind(identity.tenantId);
    this.device.bind(identity);
  }
}
