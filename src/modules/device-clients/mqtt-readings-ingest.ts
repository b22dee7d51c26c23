import {Inject, Injectable} from "@tsed/common";
import {isUnavailable, toHttpError} from "../../common/error-mapping.js";
import {DomainError} from "../../common/errors.js";
import {AppConfig} from "../../config/app-config.js";
import type {DeviceIdentity} from "../../platform/device-auth/device-key-verifier.js";
import {type MqttErrorReport, type MqttPublishHandler, readingsTopic} from "../../platform/mqtt/mqtt-server.js";
import {IngestionRateLimiter} from "../../platform/rate-limit/ingestion-rate-limiter.js";
import {runAsTenant} from "../../platform/tenancy/tenant-scope.js";
import {ReadingService} from "../readings/reading.service.js";
import {DeviceReadingsPayload} from "./device-readings-payload.js";

/**
 * Readings that devices publish over MQTT: what is MQTT's, the rest is the ingest pipeline's. A
 * message is counted against the same per-device and per-tenant budgets as HTTP
 * (IngestionRateLimiter) before its payload is even parsed, validated as an HTTP body would be
 * (DeviceReadingsPayload), and handed to ReadingService.ingest as an IngestBatch on the `mqtt`
 * transport: its tenant's group-commit lane gathers messages for MQTT_COMMIT_WINDOW_MS (or
 * MQTT_COMMIT_MAX_READINGS readings), and the message is answered once its readings are committed.
 *
 * What a message resolves to: nothing (committed: the server acknowledges it), or a report in the
 * API's error shape (invalid payload 400, payload too large 413, device not active 404, rate
 * exceeded 429: acknowledged too, stored nowhere, published on the errors topic). A write that
 * failed for want of Postgres rejects, and the server closes the connection unacknowledged.
 */
@Injectable()
export class MqttReadingsIngest implements MqttPublishHandler {
  @Inject()
  private payloads!: DeviceReadingsPayload;

  @Inject()
  private readings!: ReadingService;

  @Inject()
  private limiter!: IngestionRateLimiter;

  @Inject()
  private config!: AppConfig;

  async onReadings({tenantId, deviceId}: DeviceIdentity, payload: Buffer): Promise<MqttErrorReport | undefined> {
    let parsed;
    try {
      if (!this.limiter.unlimited) await this.limiter.consume(tenantId, deviceId);
      parsed = await this.payloads.parseBuffer(payload, this.config.mqtt.maxPayloadBytes, `topic "${readingsTopic(deviceId)}"`);
    } catch (error) {
      return report(error);
    }
    try {
      // A DI context of the device's tenant, as a request of that tenant has.
      await runAsTenant(tenantId, () =>
        this.readings.ingest({tenantId, deviceId, readings: parsed.readings, single: parsed.kind === "single"}, "mqtt")
      );
      return undefined;
    } catch (error) {
      // Refused for what it holds (400, 404): reported. Anything else is not known committed: no PUBACK, the device resends.
      if (error instanceof DomainError && !isUnavailable(error)) return report(error);
      throw error;
    }
  }

  /** Shutdown: writes what the lanes hold now, and waits for it and its DailyStats refreshes. */
  flush(): Promise<void> {
    return this.readings.flush();
  }
}

/** A refusal in the API's error shape (a 500 says nothing of its cause, as over HTTP). */
function report(error: unknown): MqttErrorReport {
  const {status, name, message, errors, retryAfterSeconds} = toHttpError(error);
  return retryAfterSeconds === undefined ? {status, name, message, errors} : {status, name, message, errors, retryAfterSeconds};
}
