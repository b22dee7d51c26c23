import {Inject, Injectable} from "@tsed/di";
import {ConflictError, InvalidInputError} from "../../common/errors.js";
import {alertsOpened as alertsOpenedCounter, readingDuplicates, readingsIngested} from "../../platform/observability/metrics.js";
import {type BatchReceipt, MAX_FUTURE_SKEW_MS, type ReadingCreated, type ReadingInput, ReceiptStatus} from "./reading.models.js";
import {ReadingRepository} from "./reading.repository.js";
import {ReadingWriter} from "./reading-writer.service.js";

@Injectable()
export class ReadingService {
  @Inject()
  private writer!: ReadingWriter;

  @Inject()
  private readings!: ReadingRepository;

  /**
   * One reading: a batch of one through the same write path. 404 (NotFoundError) when the device
   * is not an active device of the tenant: the write checks it in its INSERT.
   */
  async recordOne(deviceId: string, input: ReadingInput): Promise<ReadingCreated> {
    assertNotInFuture([input], () => "");
    const {inserted, alerts, alertsOpened: opened} = await this.writer.write(deviceId, [input]);
    countCommitted(1, inserted.length, opened);
    const [stored] = inserted;
    if (stored) return {reading: stored, alerts, duplicate: false};
    const existing = await this.readings.findByRecordedAt(deviceId, input.recordedAt);
    if (!existing) throw new ConflictError("The reading this one duplicates was removed meanwhile; retry");
    return {reading: existing, alerts: [], duplicate: true};
  }

  /**
   * Up to 1,000 readings, all or nothing: they were validated item by item against the model
   * already; the future check runs here (it depends on the clock) before anything is written.
   * A recordedAt repeated inside the batch is stored once (first occurrence wins). 404
   * (NotFoundError) when the device is not an active device of the tenant.
   */
  async recordBatch(deviceId: string, inputs: readonly ReadingInput[]): Promise<BatchReceipt> {
    assertNotInFuture(inputs, (index) => `/readings/${index}`);

    const firstIndexByTime = new Map<number, number>();
    inputs.forEach((input, index) => {
      if (!firstIndexByTime.has(input.recordedAt.getTime())) firstIndexByTime.set(input.recordedAt.getTime(), index);
    });
    // Distinct instants, in time order: ids follow time, and concurrent batches take row locks in the same order.
    const rows = [...firstIndexByTime.values()].map((index) => inputs[index]!).sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());

    const {inserted, alertsOpened} = await this.writer.write(deviceId, rows);
    countCommitted(inputs.length, inserted.length, alertsOpened);
    const idByTime = new Map<number, string>();
    for (const reading of inserted) idByTime.set(reading.recordedAt.getTime(), reading.id);
    const items = inputs.map((input, index) => {
      const time = input.recordedAt.getTime();
      const id = firstIndexByTime.get(time) === index ? idByTime.get(time) : undefined;
      return id === undefined
        ? {index, recordedAt: input.recordedAt, status: ReceiptStatus.DUPLICATE}
        : {index, recordedAt: input.recordedAt, status: ReceiptStatus.ACCEPTED, id};
    });
    return {inserted: inserted.length, duplicates: inputs.length - inserted.length, alertsFired: alertsOpened, items};
  }
}

/**
 * "Not more than a few minutes in the future" cannot be said in JSON Schema. The error names each
 * offending item like the schema validation does (`/readings/3/recordedAt`).
 */
function assertNotInFuture(inputs: readonly ReadingInput[], pathOf: (index: number) => string): void {
  const limit = new Date(Date.now() + MAX_FUTURE_SKEW_MS);
  const limitMs = limit.getTime();
  const errors: Record<string, unknown>[] = [];
  inputs.forEach((input, index) => {
    if (input.recordedAt.getTime() <= limitMs) return;
    errors.push({
      instancePath: `${pathOf(index)}/recordedAt`,
      keyword: "maxFutureSkew",
      message: `must not be more than ${MAX_FUTURE_SKEW_MS / 60_000} minutes in the future`,
      params: {limit: limit.toISOString()}
    });
  });
  if (errors.length) throw new InvalidInputError(`recordedAt must not be more than ${MAX_FUTURE_SKEW_MS / 60_000} minutes in the future`, errors);
}

/** Prometheus counters, once the write has committed (the writer returns after the commit). */
function countCommitted(received: number, inserted: number, opened: number) {
  readingsIngested.inc(inserted);
  readingDuplicates.inc(received - inserted);
  alertsOpenedCounter.inc(opened);
}
