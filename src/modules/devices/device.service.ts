import {UniqueConstraintViolationException} from "@mikro-orm/core";
import {Inject, Injectable} from "@tsed/common";
import {Transactional} from "@tsed/mikro-orm";
import {ConflictError, NotFoundError} from "../../common/errors.js";
import {UserService} from "../users/user.service.js";
import type {Device} from "./device.entity.js";
import {DEVICE_UPDATABLE} from "./device.models.js";
import {DeviceKeyService} from "./device-key.service.js";
import {DeviceRepository} from "./device.repository.js";

export type NewDevice = Pick<Device, "serialNumber"> & Partial<Pick<Device, "name" | "location">>;
export type DeviceChanges = Partial<Pick<Device, (typeof DEVICE_UPDATABLE)[number]>>;

@Injectable()
export class DeviceService {
  @Inject()
  private devices!: DeviceRepository;

  @Inject()
  private users!: UserService;

  @Inject()
  private deviceKeys!: DeviceKeyService;

  async register(input: NewDevice): Promise<Device> {
    const owner = await this.users.current();
    try {
      return await this.devices.insert({
        serialNumber: input.serialNumber,
        name: input.name ?? `Sensor-${input.serialNumber}`,
        location: input.location ?? null,
        ownerId: owner.id
      });
    } catch (error) {
      if (error instanceof UniqueConstraintViolationException) {
        throw new ConflictError(`A device with serial number "${input.serialNumber}" is already registered`);
      }
      throw error;
    }
  }

  async list(page: number, pageSize: number) {
    const [items, total] = await this.devices.listActive(page, pageSize);
    return {items, total, page, pageSize};
  }

  async get(id: string): Promise<Device> {
    const device = await this.devices.findById(id);
    if (!device) throw new NotFoundError("Device", id);
    return device;
  }

  /** The tenant's device with this serial number (active or not), or null. */
  findBySerialNumber(serialNumber: string): Promise<Device | null> {
    return this.devices.findBySerialNumber(serialNumber);
  }

  /** The device if it exists in the tenant and is active; readings and rules need one. */
  async getActive(id: string): Promise<Device> {
    const device = await this.devices.findActiveById(id);
    if (!device) throw new NotFoundError("Device", id);
    return device;
  }

  /** PATCH. Setting isActive to false deactivates, revoking the device's keys like DELETE. */
  async update(id: string, changes: DeviceChanges): Promise<Device> {
    const {device, revokedKeys} = await this.applyChanges(id, changes);
    this.deviceKeys.forgetRevoked(revokedKeys);
    return device;
  }

  /**
   * DELETE deactivates: the device and its history stay, it leaves the list, takes no readings,
   * and its keys are revoked (a re-activated device needs a new key).
   */
  async deactivate(id: string): Promise<void> {
    await this.update(id, {isActive: false});
  }

  /**
   * One transaction: the device's row and, when it goes inactive, the revocation of its keys
   * (DeviceKeyService.create locks the same row, so no key slips in between).
   */
  @Transactional()
  private async applyChanges(id: string, changes: DeviceChanges): Promise<{device: Device; revokedKeys: string[]}> {
    const device = await this.get(id);
    const deactivating = device.isActive && changes.isActive === false;
    // Only the fields the client sent: absent means unchanged, null clears `location`.
    for (const key of DEVICE_UPDATABLE) {
      if (changes[key] !== undefined) Object.assign(device, {[key]: changes[key]});
    }
    const saved = await this.devices.save(device);
    return {device: saved, revokedKeys: deactivating ? await this.deviceKeys.revokeAll(id) : []};
  }
}
