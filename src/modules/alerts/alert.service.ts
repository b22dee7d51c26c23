import {Inject, Injectable} from "@tsed/common";
import {NotFoundError} from "../../common/errors.js";
import {DeviceService} from "../devices/device.service.js";
import {UserService} from "../users/user.service.js";
import type {Alert} from "./alert.entity.js";
import type {AlertPage, AlertQuery, TenantAlertQuery} from "./alert.models.js";
import {AlertRepository} from "./alert.repository.js";

@Injectable()
export class AlertService {
  @Inject()
  private devices!: DeviceService;

  @Inject()
  private users!: UserService;

  @Inject()
  private alerts!: AlertRepository;

  /** Newest first (by firedAt), at most 50. */
  async listForDevice(deviceId: string, query: AlertQuery): Promise<Alert[]> {
    await this.devices.get(deviceId);
    return this.alerts.listForDevice(deviceId, query);
  }

  /** The tenant's alerts across devices, newest first, a page at a time. */
  async list(query: TenantAlertQuery): Promise<AlertPage> {
    const [items, total] = await this.alerts.listForTenant(query);
    return {items, total, page: query.page, pageSize: query.pageSize};
  }

  /** Records who acknowledged and when; acknowledging again keeps the first acknowledgement. */
  async acknowledge(alertId: string): Promise<Alert> {
    const user = await this.users.current();
    const alert = await this.alerts.acknowledge(alertId, user.id, new Date());
    if (!alert) throw new NotFoundError("Alert", alertId);
    return alert;
  }
}
