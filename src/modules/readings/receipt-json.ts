import {type BatchReceipt, ReceiptStatus} from "./reading.models.js";

const DAY_MS = 86_400_000;
/** 0000-01-01T00:00:00.000Z and 10000-01-01T00:00:00.000Z: toISOString writes 4-digit years in between. */
const MIN_4_DIGIT_YEAR_MS = -62_167_219_200_000;
const MAX_4_DIGIT_YEAR_MS = 253_402_300_800_000;

const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);

/**
 * `Date.prototype.toISOString` for many instants, exactly, at a fraction of its cost (~1.2 µs a
 * call, more than the rest of a receipt): the `YYYY-MM-DDT` part is formatted once per UTC day and
 * reused while consecutive instants share it, the time of day is plain arithmetic.
 */
export function isoFormatter(): (instant: Date) => string {
  let day = Number.NaN;
  let prefix = "";
  return (instant) => {
    const ms = instant.getTime();
    if (!(ms >= MIN_4_DIGIT_YEAR_MS && ms < MAX_4_DIGIT_YEAR_MS)) return instant.toISOString();
    const d = Math.floor(ms / DAY_MS);
    if (d !== day) {
      day = d;
      prefix = new Date(d * DAY_MS).toISOString().slice(0, 11);
    }
    const rem = ms - d * DAY_MS;
    return `${prefix}${pad2(Math.floor(rem / 3_600_000))}:${pad2(Math.floor(rem / 60_000) % 60)}:${pad2(Math.floor(rem / 1000) % 60)}.${pad3(rem % 1000)}Z`;
  };
}

/** The statuses as JSON, written without a JSON.stringify per item. */
const STATUS_JSON: Record<string, string> = {[ReceiptStatus.ACCEPTED]: '"accepted"', [ReceiptStatus.DUPLICATE]: '"duplicate"'};
/** A reading id as Postgres writes a bigint: nothing to escape. */
const DIGITS = /^\d+$/;

/**
 * The BatchReceipt model as JSON text, written directly: the same document JSON.stringify would
 * give (`items[].id` only on accepted items), in a third of the time for 1,000 items. The two
 * JSON.stringify calls per item it made for the status and the id were a third of what is left
 * (0.46 → 0.35 ms for 1,000 items): both are known strings, quoted as they are.
 */
export function batchReceiptJson({inserted, duplicates, alertsFired, items}: BatchReceipt): string {
  const iso = isoFormatter();
  let json = `{"inserted":${inserted},"duplicates":${duplicates},"alertsFired":${alertsFired},"items":[`;
  for (let i = 0; i < items.length; i++) {
    const {index, recordedAt, status, id} = items[i]!;
    const idJson = id === undefined ? "" : DIGITS.test(id) ? `,"id":"${id}"` : `,"id":${JSON.stringify(id)}`;
    json += `${i ? "," : ""}{"index":${index},"recordedAt":"${iso(recordedAt)}","status":${STATUS_JSON[status] ?? JSON.stringify(status)}${idJson}}`;
  }
  return `${json}]}`;
}
