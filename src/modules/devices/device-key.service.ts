import {Inject, Injectable} from "@tsed/common";
import {Transactional} from "@tsed/mikro-orm";
import {ConflictError, NotFoundError} from "../../common/errors.js";
import {generateDeviceKey} from "../../platform/device-auth/device-key.js";
import {DeviceKeyVerifier} from "../../platform/device-auth/device-key-verifier.js";
import type {DeviceKey, DeviceKeyCreated} from "./device-key.models.js";
import {DeviceKeyRepository} from "./device-key.repository.js";
import {DeviceRepository} from "./device.repository.js";

/** At most this many active keys per device: one in use and its successor while rotating. */
export const MAX_ACTIVE_KEYS = 2;

/**
 * Device keys (docs/api.md "Devices as clients"): a device's own credentials, so that a sensor never
 * holds a person's token. Created with a secret shown once, listed without it, revoked one by one
 * or all at once when the device is deactivated. Verification is DeviceKeyVerifier's (platform).
 */
@Injectable()
export class DeviceKeyService {
  @Inject()
  private keys!: DeviceKeyRepository;

  @Inject()
  private devices!: DeviceRepository;

  @Inject()
  private verifier!: DeviceKeyVerifier;

  /** 404 unless the device is active in the tenant; 409 when it has MAX_ACTIVE_KEYS already. */
  @Transactional()
  async create(deviceId: string): Promise<DeviceKeyCreated> {
    if (!(await this.keys.lockActiveDevice(deviceId))) throw new NotFoundError("Device", deviceId);
    if ((await this.keys.countActive(deviceId)) >= MAX_ACTIVE_KEYS) {
      throw new ConflictError(`The device has ${MAX_ACTIVE_KEYS} active keys already: revoke one before creating another`);
    }
    const {keyId, key, digest} = generateDeviceKey();
    const createdAt = await this.keys.insert(keyId, deviceId, digest);
    return {id: keyId, key, createdAt};
  }

  /** The device's active keys, without secrets. 404 for a device that is not the tenant's. */
  async list(deviceId: string): Promise<DeviceKey[]> {
    await this.assertDevice(deviceId);
    return this.keys.listActive(deviceId);
  }

  /**
   * Revokes the key: this instance answers 401 for it at once, the others within
   * REVOCATION_POLL_MS (+ a query) through the revocation feed. Idempotent; 404 for a key that is
   * not this device's.
   */
  async revoke(deviceId: string, keyId: string): Promise<void> {
    await this.assertDevice(deviceId);
    if (!(await this.keys.revoke(deviceId, keyId))) throw new NotFoundError("Device key", keyId);
    this.verifier.forget([keyId]);
  }

  /**
   * Inside the deactivating transaction: revokes every key of the device. The caller calls
   * `forgetRevoked` with the result once the transaction has committed.
   */
  revokeAll(deviceId: string): Promise<string[]> {
    return this.keys.revokeAll(deviceId);
  }

  forgetRevoked(keyIds: readonly string[]): void {
    this.verifier.forget(keyIds);
  }

  private async assertDevice(deviceId: string): Promise<void> {
    if (!(await this.devices.findById(deviceId))) throw new NotFoundError("Device", deviceId);
  }
}
