import {Inject, Injectable} from "@tsed/common";
import {Transactional} from "@tsed/mikro-orm";
import {NotFoundError} from "../../common/errors.js";
import {DeviceService} from "../devices/device.service.js";
import {UserService} from "../users/user.service.js";
import type {Alert} from "./alert.entity.js";
import type {AlertPage, AlertQuery, TenantAlertQuery} from "./alert.models.js";
import {AlertEvents} from "./alert-events.js";
import {AlertRepository, type StoredAlert} from "./alert.repository.js";

@Injectable()
export class AlertService {
  @Inject()
  private devices!: DeviceService;

  @Inject()
  private users!: UserService;

  @Inject()
  private alerts!: AlertRepository;

  @Inject()
  private events!: AlertEvents;

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

  /**
   * Records who acknowledged, when, and the comment if any; acknowledging again keeps the first
   * acknowledgement. The first one bumps the alert's version and announces `alert.acknowledged`
   * in its transaction.
   */
  async acknowledge(alertId: string, comment: string | null): Promise<StoredAlert> {
    // Outside the transaction: the caller's user row, created on first use, is remembered, and must not roll back with a 404.
    const user = await this.users.current();
    return this.acknowledgeAs(alertId, user.id, comment === "" ? null : comment);
  }

  @Transactional({retry: true})
  private async acknowledgeAs(alertId: string, userId: string, comment: string | null): Promise<StoredAlert> {
    const result = await this.alerts.acknowledge(alertId, userId, new Date(), comment);
    if (!result) throw new NotFoundError("Alert", alertId);
    if (result.acknowledged) await this.events.announce([{type: "alert.acknowledged", alert: result.alert}]);
    return result.alert;
  }
}
