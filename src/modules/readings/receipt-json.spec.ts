import {describe, expect, it} from "vitest";
import {ReceiptStatus} from "./reading.models.js";
import {batchReceiptJson, isoFormatter} from "./receipt-json.js";

describe("batch receipt JSON", () => {
  it("formats instants exactly like toISOString, across days, before 1970 and outside 4-digit years", () => {
    const iso = isoFormatter();
    const samples = [
      0,
      -1,
      1,
      86_399_999,
      86_400_000,
      Date.UTC(2024, 1, 29, 23, 59, 59, 999),
      Date.UTC(1969, 11, 31, 23, 59, 59, 1),
      -62_167_219_200_000,
      -62_167_219_200_001,
      253_402_300_799_999,
      253_402_300_800_000,
      8.64e15,
      -8.64e15
    ];
    for (let i = 0; i < 20_000; i++) samples.push(Math.floor((Math.random() * 2 - 1) * 8.64e15), Date.UTC(2026, 2, 28) + i * 30_000);
    for (const ms of samples) expect(iso(new Date(ms))).toBe(new Date(ms).toISOString());
  });

  it("is the document JSON.stringify gives, ids on accepted items only", () => {
    const items = Array.from({length: 50}, (_, index) => ({
      index,
      recordedAt: new Date(Date.UTC(2026, 2, 28, 23, 50) + index * 30_000),
      ...(index % 3 ? {status: ReceiptStatus.ACCEPTED, id: String(1_000 + index)} : {status: ReceiptStatus.DUPLICATE})
    }));
    const result = {inserted: 33, duplicates: 17, alertsFired: 1, items};
    expect(batchReceiptJson(result)).toBe(JSON.stringify(result));
    // Ids are digits as Postgres writes them; anything else is escaped as JSON.stringify would.
    const odd = {...result, items: [{index: 0, recordedAt: new Date(0), status: ReceiptStatus.ACCEPTED, id: 'a"\\b'}]};
    expect(batchReceiptJson(odd)).toBe(JSON.stringify(odd));
  });
});
