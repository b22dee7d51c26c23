import {Inject, Injectable, Logger} from "@tsed/common";
import {toHttpError} from "../../common/error-mapping.js";
import {isUnavailable} from "../../common/error-mapping.js";
import {AppConfig} from "../../config/app-config.js";
import type {DeviceIdentity} from "../../platform/device-auth/device-key-verifier.js";
import {type MqttErrorReport, type MqttPublishHandler, readingsTopic} from "../../platform/mqtt/mqtt-server.js";
import {mqttCommitBatch, mqttCommitDuration} from "../../platform/observability/metrics.js";
import {IngestionRateLimiter} from "../../platform/rate-limit/ingestion-rate-limiter.js";
import {runAsTenant} from "../../platform/tenancy/tenant-scope.js";
import {type DeviceBatch, type DeviceBatchOutcome, ReadingService} from "../readings/reading.service.js";
import {DeviceReadingsPayload} from "./device-readings-payload.js";

/** A message waiting for its group commit. */
interface Waiting {
  batch: DeviceBatch;
  resolve: (outcome: DeviceBatchOutcome) => void;
  reject: (error: unknown) => void;
}

/** The messages of one tenant gathered for one write. */
interface OpenGroup {
  tenantId: string;
  waiting: Waiting[];
  readings: number;
  timer?: NodeJS.Timeout;
}

/**
 * Readings that devices publish over MQTT, written by group commit. Each message is counted against
 * the same per-device and per-tenant budgets as HTTP (IngestionRateLimiter, before it is parsed),
 * validated as an HTTP body would be (DeviceReadingsPayload), then waits with the other messages of its tenant until
 * the group is MQTT_COMMIT_WINDOW_MS old or holds MQTT_COMMIT_MAX_READINGS readings, whichever
 * comes first; the group is written by one ReadingService.recordMany (one statement for every
 * device whose readings cannot change an alert episode) and each message resolves with its own
 * outcome once that write has committed. Under load a group forms by itself while the previous
 * one is written, so one statement serves many messages; on an idle system a reading waits at
 * most the window (5 ms by default).
 *
 * What a message may resolve to: nothing (committed: the server acknowledges it), or a report in
 * the API's error shape (invalid payload 400, payload too large 413, device not active 404, rate
 * exceeded 429: acknowledged too, stored nowhere, reported on the errors topic). A write that
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

  @Inject()
  private logger!: Logger;

  private readonly open = new Map<string, OpenGroup>();
  private readonly running = new Set<Promise<void>>();

  async onReadings(identity: DeviceIdentity, payload: Buffer): Promise<MqttErrorReport | undefined> {
    let batch: DeviceBatch;
    try {
      // The point first, as over HTTP: an invalid message costs a point too, not only a valid one.
      if (!this.limiter.unlimited) await this.limiter.consume(identity.tenantId, identity.deviceId);
      const {kind, readings} = await this.payloads.parseBuffer(
        payload,
        this.config.mqtt.maxPayloadBytes,
        `topic "${readingsTopic(identity.deviceId)}"`
      );
      batch = {deviceId: identity.deviceId, readings, single: kind === "single"};
    } catch (error) {
      return report(error);
    }
    const outcome = await this.enqueue(identity.tenantId, batch);
    return outcome.error ? report(outcome.error) : undefined;
  }

  /** Writes every open group now and waits for every write under way. */
  async flush(): Promise<void> {
    for (const group of [...this.open.values()]) this.seal(group);
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  private enqueue(tenantId: string, batch: DeviceBatch): Promise<DeviceBatchOutcome> {
    return new Promise<DeviceBatchOutcome>((resolve, reject) => {
      let group = this.open.get(tenantId);
      if (!group) {
        group = {tenantId, waiting: [], readings: 0};
        this.open.set(tenantId, group);
        const sealing = group;
        group.timer = setTimeout(() => this.seal(sealing), this.config.mqtt.commitWindowMs);
      }
      group.waiting.push({batch, resolve, reject});
      group.readings += batch.readings.length;
      if (group.readings >= this.config.mqtt.commitMaxReadings) this.seal(group);
    });
  }

  /** Closes the group to newcomers (they start the next one) and writes it. */
  private seal(group: OpenGroup): void {
    if (this.open.get(group.tenantId) !== group) return;
    this.open.delete(group.tenantId);
    clearTimeout(group.timer);
    mqttCommitBatch.observe(group.readings);
    const write = this.write(group);
    this.running.add(write);
    void write.finally(() => this.running.delete(write));
  }

  private async write({tenantId, waiting}: OpenGroup): Promise<void> {
    const sealed = performance.now();
    try {
      // A DI context of the group's tenant, as a request of that tenant has.
      // Each message is answered as soon as its readings are committed (a device on the alert path
      // does not hold up the others); the write (and so `flush`) ends after the DailyStats refresh.
      let first = true;
      const answer = (index: number, outcome: DeviceBatchOutcome) => {
        if (first) mqttCommitDuration.observe((performance.now() - sealed) / 1000);
        first = false;
        waiting[index]!.resolve(outcome);
      };
      await runAsTenant(tenantId, () =>
        this.readings.recordMany(
          waiting.map((w) => w.batch),
          answer
        )
      );
    } catch (error) {
      if (!isUnavailable(error))
        this.logger.error({
          event: "MQTT_GROUP_COMMIT_FAILED",
          tenantId,
          messages: waiting.length,
          error_name: (error as Error)?.name,
          error_message: (error as Error)?.message
        });
      for (const w of waiting) w.reject(error);
    }
  }
}

/** A refusal in the API's error shape (a 500 says nothing of its cause, as over HTTP). */
function report(error: unknown): MqttErrorReport {
  const {status, name, message, errors, retryAfterSeconds} = toHttpError(error);
  return retryAfterSeconds === undefined ? {status, name, message, errors} : {status, name, message, errors, retryAfterSeconds};
}
