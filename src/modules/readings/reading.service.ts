import {Inject, Injectable} from "@tsed/common";
import {LRUCache} from "lru-cache";
import {RetryStrategy} from "@tsed/mikro-orm";
import {ConflictError, NotFoundError} from "../../common/errors.js";
import {AppConfig} from "../../config/app-config.js";
import {GroupCommitLanes} from "../../platform/async/group-commit-lanes.js";
import {mayHaveCommitted} from "../../platform/db/lost-connection.js";
import type {ExponentialBackoffRetryStrategy} from "../../platform/db/exponential-backoff.retry-strategy.js";
import {alertsOpened, readingDuplicates, readingsIngested} from "../../platform/observability/metrics.js";
import {LIVE_READINGS_PER_WRITE, LiveReadings} from "../notifications/live-readings.js";
import {DailyStatsRefreshService} from "../stats/daily-stats-refresh.service.js";
import {AlertPathHint} from "./alert-path-hint.js";
import {
  assertRecordedInRange,
  batchReceipt,
  type BatchWritten,
  claimIds,
  type IngestBatch,
  pathOf,
  statementInput,
  storedReading,
  type Transport,
  transportPolicies,
  type TransportPolicy
} from "./ingest-batch.js";
import type {BatchReceipt, ReadingCreated, ReadingInput} from "./reading.models.js";
import {type DeviceReadings, FreshReadingsStoredAlready, type IngestResult, ReadingRepository} from "./reading.repository.js";
import {ReadingRetentionRule} from "../../common/raw-retention.js";
import {ReadingWriter} from "./reading-writer.js";
import type {RuleState, Threshold} from "../alerts/alert-episodes.js";
import {AlertRuleKind} from "../alerts/alert-rule.entity.js";

/**
 * Statements of at least this many readings are written by a plain INSERT when every reading is
 * newer than what this instance last stored of its device (ReadingRepository.ingest, `fresh`):
 * the alert transaction's, and the autocommitted ones that run on the ORM's pool (a batch larger
 * than a group, or any write without group commit). Below it, speculative insertion costs little
 * beside the statement's fixed cost, and a second text per tenant takes the place of another
 * statement among the prepared ones (MAX_PREPARED_STATEMENTS). Never for a group on the tenant
 * connections: there a second text per tenant took the place of other tenants' prepared
 * statements (DB_INGEST_PREPARED_PER_CONNECTION), and 100-reading batches spread over 1,000
 * tenants cost Postgres 2.4 instead of 1.5 ms each (bench:multitenant, batch100).
 */
const FRESH_INSERT_MIN_READINGS = 100;

/** Devices whose newest stored reading this instance remembers (the least recently written go first). */
const NEWEST_STORED_KEPT = 10_000;

/** What a group write did with a batch: committed it, or left it to the transactional path, or found no active device. */
type Grouped = {written: BatchWritten; refreshed: Promise<void>} | "alerts" | "missing";

/**
 * Ingestion, one pipeline for every transport: the clock and retention checks, the tenant's
 * group-commit lane (GroupCommitLanes, with the transport's window and size), the one writer
 * (ReadingWriter: one autocommitted statement for the group, or the `@Transactional` path for a
 * device whose readings may change an alert episode), the hand-off of the day totals to
 * DailyStatsRefreshService (`refresh` for a group's autocommitted statement; the transaction's
 * commit hook for the `@Transactional` path), the receipts.
 */
@Injectable()
export class ReadingService {
  @Inject()
  private writer!: ReadingWriter;

  @Inject()
  private readings!: ReadingRepository;

  @Inject()
  private dailyStats!: DailyStatsRefreshService;

  @Inject()
  private live!: LiveReadings;

  @Inject(RetryStrategy)
  private retryStrategy!: ExponentialBackoffRetryStrategy;

  @Inject()
  private config!: AppConfig;

  @Inject()
  private retention!: ReadingRetentionRule;

  /** Which devices' writes will need the alert transaction, as their last write here saw it. */
  private readonly alertPath = new AlertPathHint();

  /**
   * Per device (`tenant/device`), the newest recordedAt (epoch ms) of a reading this instance
   * stored or found stored: readings all newer than it are most likely new. Only a guess: another
   * instance may have stored them, and the plain INSERT then meets the duplicate and the usual
   * statement runs (ReadingRepository.ingest).
   */
  private readonly newestStored = new LRUCache<string, number>({max: NEWEST_STORED_KEPT});

  /** Per transport, its policy and the tenants' lanes (made on first use: the configuration is injected after construction). */
  private transports?: Record<Transport, {policy: TransportPolicy; lanes: GroupCommitLanes<IngestBatch, Grouped>}>;

  /**
   * Stores a batch (all or nothing per batch, first occurrence of a recordedAt wins, a repeat is a
   * duplicate) and answers it: ReadingCreated for a single reading, else a BatchReceipt.
   * @throws InvalidInputError (400) out of the clock bounds or the retention; NotFoundError (404)
   *   when the device is not an active device of the tenant
   */
  ingest(batch: IngestBatch & {single: true}, transport?: Transport): Promise<ReadingCreated>;
  ingest(batch: IngestBatch & {single: false}, transport?: Transport): Promise<BatchReceipt>;
  ingest(batch: IngestBatch, transport?: Transport): Promise<ReadingCreated | BatchReceipt>;
  async ingest(batch: IngestBatch, transport: Transport = "http"): Promise<ReadingCreated | BatchReceipt> {
    assertRecordedInRange(batch, this.config.readings.maxFutureSkewMs);
    await this.retention.assertKept(batch.readings, pathOf(batch));
    const device = `${batch.tenantId}/${batch.deviceId}`;
    const {policy, lanes} = (this.transports ??= this.makeTransports())[transport];
    const grouped = this.alertPath.expectsAlertChange(device, batch.readings) ? "alerts" : await lanes.submit(batch.tenantId, batch);
    if (grouped === "missing") throw new NotFoundError("Device", batch.deviceId);
    let written: BatchWritten;
    if (grouped === "alerts") {
      // Its DailyStats are refreshed by the transaction's commit hook, before it returns (ReadingWriter).
      const rows = statementInput([batch]);
      const readings = rows[0]!.readings;
      const fresh = this.expectsNew(batch.tenantId, rows);
      const {result, alerts, alertsOpened, state, leftOpen} = await this.writer
        .withAlerts(batch.tenantId, batch.deviceId, readings, {fresh})
        .catch((error: unknown) => {
          // Rolled back: stored elsewhere after all. Again, with the statement that skips duplicates.
          if (!(error instanceof FreshReadingsStoredAlready)) throw error;
          return this.writer.withAlerts(batch.tenantId, batch.deviceId, readings, {fresh: false});
        })
        .catch((error: unknown) => this.failedWrite(batch.tenantId, batch.readings, error));
      this.alertPath.remember(device, thresholdsOf(state.rules), leftOpen);
      this.rememberNewest(batch.tenantId, rows);
      written = {ids: claimIds([batch], result.insertedIds)[0]!, createdAt: result.createdAt, alerts, alertsOpened};
    } else {
      if (!policy.answerBeforeRefresh) await grouped.refreshed;
      written = grouped.written;
    }
    // Both paths have committed here: `reading.created` to the live stream, not awaited (LiveReadings).
    const stored = written.ids.flatMap((id, i) => (id === undefined ? [] : [{id, input: batch.readings[i]!}]));
    if (stored.length) {
      const announced = newestOf(stored, LIVE_READINGS_PER_WRITE).map(({id, input}) =>
        storedReading(batch.deviceId, input, id, written.createdAt)
      );
      this.live.committed(batch.tenantId, announced, written.createdAt, stored.length);
    }
    const inserted = stored.length;
    readingsIngested.inc(inserted);
    readingDuplicates.inc(batch.readings.length - inserted);
    alertsOpened.inc(written.alertsOpened);
    return batch.single ? this.created(batch, written) : batchReceipt(batch, written);
  }

  /** Shutdown: writes every open group now; resolves once they and their DailyStats refreshes are done. */
  async flush(): Promise<void> {
    await Promise.all(Object.values(this.transports ?? {}).map(({lanes}) => lanes.flush()));
    await this.dailyStats.flush();
  }

  /**
   * One group of a tenant's batches (any devices, submitted while its previous group was written),
   * by one autocommitted statement. A device whose readings may change an episode gets nothing
   * inserted and takes the transactional path, as does every batch of a group whose statement hit
   * a deadlock or serialization failure (that path retries). Runs in the DI context of the
   * submitter that opened the group (same tenant).
   */
  private async writeGroup(batches: IngestBatch[], policy: TransportPolicy): Promise<Grouped[]> {
    let result: IngestResult;
    const tenantId = batches[0]!.tenantId;
    try {
      const started = performance.now();
      const rows = statementInput(batches);
      const readings = rows.reduce((sum, row) => sum + row.readings.length, 0);
      // A batch larger than a group is written alone, beside its lane (and without group commit, each one is).
      const grouped = readings <= policy.maxSize;
      result = await this.writer.together(rows, {grouped, fresh: !grouped && this.expectsNew(tenantId, rows)});
      policy.observe?.(readings, (performance.now() - started) / 1000);
      this.rememberNewest(
        tenantId,
        rows.filter(({deviceId}) => result.activeDevices.has(deviceId) && !result.alertChangeDevices.has(deviceId))
      );
    } catch (error) {
      if (this.retryStrategy.retryReason(error) !== undefined) return batches.map(() => "alerts");
      const readings = batches.flatMap((batch) => batch.readings);
      this.failedWrite(tenantId, readings, error);
    }
    const refreshed = this.refresh(tenantId, result);
    const ids = claimIds(batches, result.insertedIds);
    const grouped = batches.map(({tenantId, deviceId}, index): Grouped => {
      if (!result.activeDevices.has(deviceId)) return "missing";
      if (result.alertChangeDevices.has(deviceId)) return "alerts";
      this.alertPath.remember(`${tenantId}/${deviceId}`, result.thresholds.get(deviceId) ?? [], false);
      return {written: {ids: ids[index]!, createdAt: result.createdAt, alerts: [], alertsOpened: 0}, refreshed};
    });
    // Answered after the refresh, the lane is held through it too: the next group gathers meanwhile (fewer, larger statements).
    if (!policy.answerBeforeRefresh) await refreshed;
    return grouped;
  }

  /**
   * A write of `readings` failed: rethrows its error, and when the write may have committed all the
   * same (its connection lost in flight), hands their days to DailyStats' repair (not awaited: the
   * answer is an error either way).
   */
  private failedWrite(tenantId: string, readings: readonly ReadingInput[], error: unknown): never {
    if (mayHaveCommitted(error)) void this.dailyStats.outcomeUnknown(tenantId, readings, error);
    throw error;
  }

  /** Whether `rows` (each device's readings in time order) are worth a plain INSERT: enough of them, each newer than its device's newest stored here. */
  private expectsNew(tenantId: string, rows: readonly DeviceReadings[]): boolean {
    let count = 0;
    for (const {deviceId, readings} of rows) {
      const newest = this.newestStored.get(`${tenantId}/${deviceId}`);
      if (newest === undefined || readings.length === 0 || readings[0]!.recordedAt.getTime() <= newest) return false;
      count += readings.length;
    }
    return count >= FRESH_INSERT_MIN_READINGS;
  }

  /** After a write of `rows` (each device's readings in time order): all of them are stored now, by it or before. */
  private rememberNewest(tenantId: string, rows: readonly DeviceReadings[]): void {
    for (const {deviceId, readings} of rows) {
      const device = `${tenantId}/${deviceId}`;
      const newest = readings.at(-1)?.recordedAt.getTime();
      if (newest !== undefined && newest > (this.newestStored.get(device) ?? Number.NEGATIVE_INFINITY))
        this.newestStored.set(device, newest);
    }
  }

  /** The hand-off of an autocommitted group write's day totals to the DailyStats refresh (the transactional path's goes through its commit hook). */
  private refresh(tenantId: string, result: IngestResult): Promise<void> {
    if (result.days.size === 0) return Promise.resolve();
    return this.dailyStats.committed({tenantId, xid: result.xid, byDevice: result.days});
  }

  private async created(batch: IngestBatch, written: BatchWritten): Promise<ReadingCreated> {
    const [input] = batch.readings;
    const [id] = written.ids;
    if (id !== undefined)
      return {reading: storedReading(batch.deviceId, input!, id, written.createdAt), alerts: [...written.alerts], duplicate: false};
    const existing = await this.readings.findByRecordedAt(batch.deviceId, input!.recordedAt);
    if (!existing) throw new ConflictError("The reading this one duplicates was removed meanwhile; retry");
    return {reading: existing, alerts: [], duplicate: true};
  }

  private makeTransports() {
    const policies = transportPolicies(this.config);
    const transport = (policy: TransportPolicy) => ({
      policy,
      lanes: new GroupCommitLanes((_tenantId, batches: IngestBatch[]) => this.writeGroup(batches, policy), policy)
    });
    return {http: transport(policies.http), mqtt: transport(policies.mqtt)};
  }
}

/**
 * The newest `max` of a write's stored readings, in recordedAt order (all of them when there are
 * no more): what the live stream announces of it.
 */
function newestOf<T extends {input: {recordedAt: Date}}>(stored: readonly T[], max: number): T[] {
  const ordered =
    stored.length <= max
      ? [...stored]
      : [...stored].sort((a, b) => a.input.recordedAt.getTime() - b.input.recordedAt.getTime()).slice(-max);
  return ordered;
}

/** The thresholds of a device's threshold rules (its no_data rules compare no temperature). */
function thresholdsOf(rules: readonly RuleState[]): Threshold[] {
  return rules.flatMap((rule) => (rule.kind === AlertRuleKind.THRESHOLD ? [rule] : []));
}
