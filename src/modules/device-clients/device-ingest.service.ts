import {Inject, Injectable} from "@tsed/common";
import {DeviceContext} from "../../platform/device-auth/device-context.js";
import {TenantContext} from "../../platform/tenancy/tenant-context.js";
import type {BatchReceipt, ReadingCreated} from "../readings/reading.models.js";
import {ReadingService} from "../readings/reading.service.js";
import {DeviceReadingsPayload} from "./device-readings-payload.js";

/**
 * A device's own HTTP ingestion: the device comes from its key (DeviceContext), the body is one
 * reading or several, and the write is the user routes' own (ReadingService.ingest, the same
 * IngestBatch), so the answers, idempotency, alerts and DailyStats are theirs too.
 */
@Injectable()
export class DeviceIngestService {
  @Inject()
  private device!: DeviceContext;

  @Inject()
  private tenant!: TenantContext;

  @Inject()
  private payloads!: DeviceReadingsPayload;

  @Inject()
  private readings!: ReadingService;

  async record(body: unknown): Promise<ReadingCreated | BatchReceipt> {
    const {kind, readings} = await this.payloads.parse(body, `parameter "request.body"`);
    return this.readings.ingest({tenantId: this.tenant.tenantId, deviceId: this.device.deviceId, readings, single: kind === "single"});
  }
}
