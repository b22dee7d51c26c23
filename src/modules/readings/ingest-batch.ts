import {InvalidInputError} from "../../common/errors.js";
import type {AppConfig} from "../../config/app-config.js";
import type {GroupPolicy} from "../../platform/async/group-commit-lanes.js";
import {mqttCommitBatch, mqttCommitDuration} from "../../platform/observability/metrics.js";
import type {StoredAlert} from "../alerts/alert.repository.js";
import {type BatchReceipt, EARLIEST_RECORDED_AT, type ReadingInput, ReceiptStatus, type StoredReading} from "./reading.models.js";
import type {DeviceReadings} from "./reading.repository.js";

/**
 * The one input of ingestion, whatever the transport: the user routes, a device's own route and
 * MQTT all produce it and hand it to ReadingService.ingest.
 */
export interface IngestBatch {
  tenantId: string;
  deviceId: string;
  /** Validated against the models already (one reading, or up to MAX_BATCH_SIZE). */
  readings: readonly ReadingInput[];
  /** Sent as one reading: answered as one (ReadingCreated), errors name `/recordedAt`, not `/readings/0/recordedAt`. */
  single: boolean;
}

/** The transports, each with its own lanes and policy. */
export type Transport = "http" | "mqtt";

/** How a transport's batches are grouped (window, size: readings) and when they are answered. */
export interface TransportPolicy extends GroupPolicy<IngestBatch> {
  /** Answer once the readings are committed, before the DailyStats refresh (a device reads no statistics). */
  answerBeforeRefresh: boolean;
  /** Told of each group statement: its readings, and the seconds from its start to its commit. */
  observe?: (readings: number, seconds: number) => void;
}

/** Readings per HTTP group statement: under load a group holds what arrived during the previous write, at most this. */
const MAX_HTTP_GROUP_READINGS = 500;

export function transportPolicies({readings, mqtt}: AppConfig): Record<Transport, TransportPolicy> {
  const sizeOf = (batch: IngestBatch) => batch.readings.length;
  return {
    // HTTP: what a tenant posts while its previous write runs (READINGS_GROUP_COMMIT off: each batch is its own statement).
    http: {
      windowMs: 0,
      maxSize: readings.groupCommit ? MAX_HTTP_GROUP_READINGS : 0,
      sizeOf,
      answerBeforeRefresh: false,
      metricName: "readings_http"
    },
    // MQTT: what arrives within MQTT_COMMIT_WINDOW_MS, or MQTT_COMMIT_MAX_READINGS (README "Devices as clients").
    mqtt: {
      windowMs: mqtt.commitWindowMs,
      maxSize: mqtt.commitMaxReadings,
      sizeOf,
      answerBeforeRefresh: true,
      metricName: "readings_mqtt",
      observe: (readings, seconds) => (mqttCommitBatch.observe(readings), mqttCommitDuration.observe(seconds))
    }
  };
}

const EARLIEST_RECORDED_AT_MS = Date.parse(EARLIEST_RECORDED_AT);

/** How the errors of a batch name its readings, like the schema validation does. */
export const pathOf = (batch: IngestBatch) => (batch.single ? () => "" : (index: number) => `/readings/${index}`);

/**
 * "Not before 2000, not more than READING_MAX_FUTURE_SKEW_S ahead of our clock" cannot be said in
 * JSON Schema (the clock moves). A device with a fast clock would otherwise make its own newest
 * reading "the future" and every real reading after it late. The error names each offending
 * item like the schema validation does (`/readings/3/recordedAt`).
 */
export function assertRecordedInRange(batch: IngestBatch, skewMs: number): void {
  const latest = Date.now() + skewMs;
  const path = pathOf(batch);
  const errors: Record<string, unknown>[] = [];
  batch.readings.forEach((input, index) => {
    const at = input.recordedAt.getTime();
    if (at > latest) {
      const message = `must not be more than ${skewMs / 1000} s ahead of the server's clock`;
      errors.push({
        instancePath: `${path(index)}/recordedAt`,
        keyword: "maxFutureSkew",
        message,
        params: {limit: new Date(latest).toISOString()}
      });
    } else if (at < EARLIEST_RECORDED_AT_MS) {
      const message = `must not be before ${EARLIEST_RECORDED_AT}`;
      errors.push({instancePath: `${path(index)}/recordedAt`, keyword: "formatMinimum", message, params: {limit: EARLIEST_RECORDED_AT}});
    }
  });
  if (errors.length)
    throw new InvalidInputError(
      `recordedAt must be between ${EARLIEST_RECORDED_AT} and ${skewMs / 1000} s ahead of the server's clock`,
      errors
    );
}

/**
 * The ingest statement's input for batches of one write: per device, its distinct readings (the
 * first occurrence of a recordedAt wins), sorted by device, then time: ids follow time, and
 * concurrent statements take row locks in one order.
 */
export function statementInput(batches: readonly IngestBatch[]): DeviceReadings[] {
  const byDevice = new Map<string, Map<number, ReadingInput>>();
  for (const {deviceId, readings} of batches) {
    let byTime = byDevice.get(deviceId);
    if (!byTime) byDevice.set(deviceId, (byTime = new Map()));
    for (const reading of readings) if (!byTime.has(reading.recordedAt.getTime())) byTime.set(reading.recordedAt.getTime(), reading);
  }
  return [...byDevice.keys()].sort().map((deviceId) => ({
    deviceId,
    readings: [...byDevice.get(deviceId)!.values()].sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime())
  }));
}

/**
 * Per batch and reading, the id the write stored it under, or undefined for a duplicate: stored
 * before, or earlier in the same write (the first batch, then the first reading naming an
 * instant gets the id), as a retry after it would be.
 */
export function claimIds(
  batches: readonly IngestBatch[],
  insertedIds: ReadonlyMap<string, ReadonlyMap<number, string>>
): (string | undefined)[][] {
  const claimed = new Set<string>();
  return batches.map(({deviceId, readings}) =>
    readings.map((reading) => {
      const id = insertedIds.get(deviceId)?.get(reading.recordedAt.getTime());
      if (id === undefined || claimed.has(id)) return undefined;
      claimed.add(id);
      return id;
    })
  );
}

/** What the write of a batch committed: its readings' ids (claimIds), the rows' created_at, the episodes it changed and opened. */
export interface BatchWritten {
  ids: readonly (string | undefined)[];
  createdAt: Date;
  alerts: readonly StoredAlert[];
  alertsOpened: number;
}

/** A stored reading as the API shows it. */
export function storedReading(deviceId: string, input: ReadingInput, id: string, createdAt: Date): StoredReading {
  // An object literal, not a spread: spreading 1,000 readings cost ~1.4 ms.
  const {temperatureCelsius, humidity, batteryLevel, recordedAt} = input;
  return {id, deviceId, temperatureCelsius, humidity, batteryLevel, recordedAt, createdAt};
}

/** The one receipts builder: a batch's receipt, item by item. */
export function batchReceipt(batch: IngestBatch, written: BatchWritten): BatchReceipt {
  let inserted = 0;
  const items = batch.readings.map((input, index) => {
    const id = written.ids[index];
    if (id === undefined) return {index, recordedAt: input.recordedAt, status: ReceiptStatus.DUPLICATE};
    inserted++;
    return {index, recordedAt: input.recordedAt, status: ReceiptStatus.ACCEPTED, id};
  });
  return {inserted, duplicates: items.length - inserted, alertsFired: written.alertsOpened, items};
}
