import {LRUCache} from "lru-cache";
import {type Threshold, violates} from "../alerts/alert-predicate.js";
import type {ReadingInput} from "./reading.models.js";

/** At most this many devices are remembered (the least recently written go first). */
const MAX_DEVICES = 10_000;

/**
 * A guess, per device (`tenant/device`), of whether its next write will need the alert
 * transaction, from what its last write on this instance saw: its evaluated rules' thresholds and
 * whether an episode was left open. When the guess is yes, ReadingService skips the autocommitted
 * group statement, which would find so under its lock and insert nothing — for a 1,000-reading
 * batch that is the arrays serialized and sent twice and a statement that stores nothing.
 *
 * Only a hint: the transaction is right for any write and the group statement still decides for
 * itself whenever it runs, so a stale entry (a rule changed on another instance) costs at most
 * one BEGIN/COMMIT or one declined statement, and the write it costs refreshes the entry. Hence
 * no invalidation and no sharing between instances. A device with no evaluated rule and no open
 * episode is not remembered at all (what a missing entry says already): most devices of a fleet
 * cost this process nothing here.
 */
export class AlertPathHint {
  private readonly devices = new LRUCache<string, {rules: readonly Threshold[]; episodeOpen: boolean}>({max: MAX_DEVICES});

  /** Whether the write of `readings` will change an episode, as far as the last write saw. */
  expectsAlertChange(device: string, readings: readonly ReadingInput[]): boolean {
    const seen = this.devices.get(device);
    if (!seen) return false;
    if (seen.episodeOpen) return true;
    return seen.rules.length > 0 && readings.some((reading) => seen.rules.some((rule) => violates(rule, reading.temperatureCelsius)));
  }

  remember(device: string, rules: readonly Threshold[], episodeOpen: boolean): void {
    if (rules.length === 0 && !episodeOpen) this.devices.delete(device);
    else this.devices.set(device, {rules: rules.map(({condition, thresholdCelsius}) => ({condition, thresholdCelsius})), episodeOpen});
  }
}
