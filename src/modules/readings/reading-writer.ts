import {Inject, Injectable} from "@tsed/common";
import {Transactional} from "@tsed/mikro-orm";
import {NotFoundError} from "../../common/errors.js";
import {AlertEpisodeService} from "../alerts/alert-episode.service.js";
import type {EpisodeReading, EpisodeState} from "../alerts/alert-episodes.js";
import type {StoredAlert} from "../alerts/alert.repository.js";
import {AlertRuleKind} from "../alerts/alert-rule.entity.js";
import {DailyStatsRefreshService} from "../stats/daily-stats-refresh.service.js";
import type {ReadingInput} from "./reading.models.js";
import {type DeviceReadings, type IngestResult, ReadingRepository} from "./reading.repository.js";

/** What the transactional path committed: its statement's result (ids, day totals, xid), and the episodes it changed. */
export interface WrittenWithAlerts {
  result: IngestResult;
  alerts: StoredAlert[];
  alertsOpened: number;
  /** The device's rules before the write, and whether the write left an episode open (for AlertPathHint). */
  state: EpisodeState;
  leftOpen: boolean;
}

/**
 * The one writer of readings, with its two ways to commit — both run the ingest statement
 * (ingestSql) and return what they committed:
 * - `together`: readings of many devices in one autocommitted statement, for every device whose
 *   readings cannot change an alert episode (the statement decides under the rules' FOR SHARE
 *   lock, so the decision cannot go stale between a read and the write). One round trip: a
 *   transaction around it would add BEGIN and COMMIT for nothing.
 * - `withAlerts`: one device's readings and the episodes they change, in one `@Transactional`
 *   transaction retried as a whole by the RetryStrategy (exponential backoff) on serialization
 *   failures, deadlocks and the one-open-alert race; a retry starts from fresh state, so it
 *   re-decides. Only the committed attempt's result comes back, and its day totals reach
 *   DailyStats through the AfterTransactionCommit hook (`dailyStats.afterCommit`, below).
 * `together`'s caller (ReadingService.refresh) hands its day totals over once it has returned,
 * that is, committed.
 */
@Injectable()
export class ReadingWriter {
  @Inject()
  private readings!: ReadingRepository;

  @Inject()
  private episodes!: AlertEpisodeService;

  @Inject()
  private dailyStats!: DailyStatsRefreshService;

  /**
   * @param grouped whether the write is a group-commit lane's group: it then runs on the tenant's
   *   own connection, committed with other tenants' groups (TenantAffineConnections). A batch too
   *   large for a group, or any write without group commit, is a statement and transaction of its
   *   own on the ORM's pool: concurrent big batches of one tenant keep running side by side.
   * @param fresh the readings are expected to be new: a plain INSERT (ReadingRepository.ingest)
   */
  together(rows: readonly DeviceReadings[], {grouped, fresh}: {grouped: boolean; fresh: boolean}): Promise<IngestResult> {
    return this.readings.ingest(rows, {onlyWithoutAlertChange: true, withEpisodeState: false, onTenantConnection: grouped, fresh});
  }

  /**
   * Round trips: BEGIN, the rules' lock (which reads what the events name), the ingest statement
   * (device check, rule state, INSERT), the episode writes (the last one with the rules' state),
   * the events, COMMIT; then the DailyStats refresh of what it inserted (the commit hook).
   * @param fresh the readings are expected to be new: a plain INSERT (ReadingRepository.ingest)
   * @throws NotFoundError when the device does not exist in the tenant or is inactive (nothing is stored)
   * @throws FreshReadingsStoredAlready when `fresh` readings were stored already: nothing is stored, call again without it
   */
  @Transactional({retry: true})
  async withAlerts(
    tenantId: string,
    deviceId: string,
    rows: readonly ReadingInput[],
    {fresh}: {fresh: boolean}
  ): Promise<WrittenWithAlerts> {
    // First, in a statement of its own: the ingest statement that follows then reads the device's
    // readings and rules as the previous episode-changing write committed them.
    const locked = await this.episodes.lockRules(deviceId);
    const result = await this.readings.ingest([{deviceId, readings: rows}], {onlyWithoutAlertChange: false, withEpisodeState: true, fresh});
    const state = result.episodeStates.get(deviceId);
    if (!state) throw new NotFoundError("Device", deviceId);
    const ids = result.insertedIds.get(deviceId);
    const inserted: EpisodeReading[] = [];
    for (const row of rows) {
      const id = ids?.get(row.recordedAt.getTime());
      // Only what the state machine reads: id, temperature, recordedAt (1,000 of them per batch).
      if (id !== undefined) inserted.push({id, temperatureCelsius: row.temperatureCelsius, recordedAt: row.recordedAt});
    }
    const {alerts, opened} = await this.episodes.apply(
      deviceId,
      state,
      inserted,
      result.createdAt,
      {
        since: (from) => this.readings.since(deviceId, from),
        runStart: (rule, before, notBefore) => this.readings.runStart(deviceId, rule, before, notBefore)
      },
      locked
    );
    // Merged into DailyStats by the AfterTransactionCommit hook once this attempt commits; a retried attempt replaces them.
    if (result.days.size > 0) this.dailyStats.afterCommit({tenantId, xid: result.xid, byDevice: result.days});
    return {result, alerts, alertsOpened: opened, state, leftOpen: episodeLeftOpen(state, alerts)};
  }
}

/** Whether a threshold episode is open after the write: one it opened or extended, or one it did not touch. (A no_data one it resolved.) */
function episodeLeftOpen(before: EpisodeState, changed: readonly StoredAlert[]): boolean {
  if (changed.some((alert) => !alert.resolvedAt && !alert.retractedAt)) return true;
  return before.rules.some(
    (rule) => rule.kind === AlertRuleKind.THRESHOLD && rule.open !== null && !changed.some((alert) => alert.id === rule.open!.id)
  );
}
