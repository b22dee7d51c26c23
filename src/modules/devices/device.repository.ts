import {Inject, Injectable} from "@tsed/common";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import {Device} from "./device.entity.js";

@Injectable()
export class DeviceRepository {
  @Inject()
  private tenant!: TenantContext;

  findById(id: string) {
    return this.tenant.em.findOne(Device, {id});
  }

  /** An active device of the tenant, or null: readings and rules attach only to these. */
  findActiveById(id: string) {
    return this.tenant.em.findOne(Device, {id, isActive: true});
  }

  findBySerialNumber(serialNumber: string) {
    return this.tenant.em.findOne(Device, {serialNumber});
  }

  listActive(page: number, pageSize: number) {
    return this.tenant.em.findAndCount(
      Device,
      {isActive: true},
      {orderBy: {createdAt: "desc", id: "desc"}, limit: pageSize, offset: (page - 1) * pageSize}
    );
  }

  async insert(data: Pick<Device, "serialNumber" | "name" | "location" | "ownerId">): Promise<Device> {
    const em = this.tenant.em;
    const device = em.create(Device, {...data, isActive: true});
    await em.persistAndFlush(device);
    return device;
  }

  async save(device: Device): Promise<Device> {
    await this.tenant.em.persistAndFlush(device);
    return device;
  }
}
