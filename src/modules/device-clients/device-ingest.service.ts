import {Inject, Injectable} from "@tsed/common";
import {DeviceContext} from "../../platform/device-auth/device-context.js";
import type {BatchReceipt, ReadingCreated} from "../readings/reading.models.js";
import {ReadingService} from "../readings/reading.service.js";
import {DeviceReadingsPayload} from "./device-readings-payload.js";

/**
 * A device's own HTTP ingestion: the device comes from its key (DeviceContext), the body is one
 * reading or several, and the write is the user routes' own (recordOne, recordBatch), so the
 * answers, idempotency, alerts and DailyStats are theirs too.
 */
@Injectable()
export class DeviceIngestService {
  @Inject()
  private device!: DeviceContext;

  @Inject()
  private payloads!: DeviceReadingsPayload;

  @Inject()
  private readings!: ReadingService;

  async record(body: unknown): Promise<{single: ReadingCreated} | {batch: BatchReceipt}> {
    const {kind, readings} = await this.payloads.parse(body, `parameter "request.body"`);
    const deviceId = this.device.deviceId;
    return kind === "single"
      ? {single: await this.readings.recordOne(deviceId, readings[0]!)}
      : {batch: await this.readings.recordBatch(deviceId, readings)};
  }
}
