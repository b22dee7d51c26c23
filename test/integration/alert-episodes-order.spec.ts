import fc from "fast-check";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {createDevice} from "../helpers/factories.js";
import {checkProperty, type PropertyBudget, propertyTimeout} from "../helpers/property.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {bearer, newTenant} from "../helpers/tokens.js";

interface Reading {
  minute: number;
  temperatureCelsius: number;
}

interface Rule {
  condition: "above" | "below";
  thresholdCelsius: number;
  forSeconds: number;
  clearDeltaCelsius: number;
}

/** How the readings arrive: in chunks, each posted as single requests or as one batch; chunks of a group race. */
interface Arrival {
  order: number[];
  cuts: number[];
  batched: boolean[];
  groupSizes: number[];
}

const START = Date.UTC(2026, 5, 1);
const at = (minute: number) => new Date(START + minute * 60_000).toISOString();

/**
 * The oracle, written independently of src/: the episodes of a rule over readings in recordedAt
 * order, as docs/api.md "Alerts" states them. A run is a maximal sequence of consecutive violating
 * readings; it fires at its first reading at least forSeconds after the run's first, with peak and
 * count from the run's first; an open episode takes further violating readings, ignores readings
 * in the band (violating no more, not yet δ back) and resolves at the first reading δ back inside.
 */
function expectedEpisodes(rule: Rule, readings: Reading[]) {
  const sorted = [...readings].sort((a, b) => a.minute - b.minute);
  const sign = rule.condition === "above" ? 1 : -1;
  // Distance beyond the threshold, positive when violating, in the rule's direction.
  const beyond = (t: number) => sign * (t - rule.thresholdCelsius);
  const episodes: {
    breachStartedAt: string;
    firedAt: string;
    temperatureCelsius: number;
    lastReadingAt: string;
    peak: number;
    count: number;
    resolvedAt: string | null;
  }[] = [];
  let open: (typeof episodes)[number] | null = null;
  let run: Reading[] = [];
  for (const r of sorted) {
    const d = beyond(r.temperatureCelsius);
    if (d > 0 && open) {
      open.count++;
      open.lastReadingAt = at(r.minute);
      open.peak = sign > 0 ? Math.max(open.peak, r.temperatureCelsius) : Math.min(open.peak, r.temperatureCelsius);
    } else if (d > 0) {
      run.push(r);
      if ((r.minute - run[0]!.minute) * 60 >= rule.forSeconds) {
        const temperatures = run.map((x) => x.temperatureCelsius);
        open = {
          breachStartedAt: at(run[0]!.minute),
          firedAt: at(r.minute),
          temperatureCelsius: r.temperatureCelsius,
          lastReadingAt: at(r.minute),
          peak: sign > 0 ? Math.max(...temperatures) : Math.min(...temperatures),
          count: run.length,
          resolvedAt: null
        };
        episodes.push(open);
        run = [];
      }
    } else {
      run = [];
      if (open && d <= -rule.clearDeltaCelsius) {
        open.resolvedAt = at(r.minute);
        open = null;
      }
    }
  }
  return episodes;
}

const scenario = fc
  .record({
    minutes: fc.uniqueArray(fc.integer({min: 0, max: 600}), {minLength: 2, maxLength: 24}),
    temperatures: fc.array(fc.integer({min: 10, max: 40}), {minLength: 24, maxLength: 24}),
    rules: fc.uniqueArray(
      fc.record({
        condition: fc.constantFrom<"above" | "below">("above", "below"),
        thresholdCelsius: fc.integer({min: 15, max: 35}),
        // Readings lie minutes apart: runs of 0 to 4 minutes, and bands of 0 to 3 °C.
        forSeconds: fc.constantFrom(0, 0, 60, 120, 240),
        clearDeltaCelsius: fc.constantFrom(0, 0, 1, 3)
      }),
      {
        minLength: 1,
        maxLength: 2,
        selector: (rule) => rule.condition
      }
    ),
    seed: fc.array(fc.nat(), {minLength: 24, maxLength: 24}),
    cuts: fc.array(fc.nat(), {maxLength: 6}),
    batched: fc.array(fc.boolean(), {minLength: 7, maxLength: 7}),
    groupSizes: fc.array(fc.integer({min: 1, max: 3}), {minLength: 7, maxLength: 7})
  })
  .map(({minutes, temperatures, rules, seed, cuts, batched, groupSizes}) => {
    const readings: Reading[] = minutes.map((minute, i) => ({minute, temperatureCelsius: temperatures[i]!}));
    // A random arrival order: sort indexes by a random key.
    const order = readings.map((_, i) => i).sort((a, b) => seed[a]! - seed[b]! || a - b);
    return {readings, rules, arrival: {order, cuts, batched, groupSizes} satisfies Arrival};
  });

describe("alert episodes do not depend on arrival order", () => {
  let api: Api;
  let auth: Record<string, string>;

  beforeAll(async () => {
    api = await startTestServer();
    auth = await bearer(newTenant("order"));
  });
  afterAll(async () => {
    await stopTestServer();
  });

  /** Posts the readings as the arrival plan says; returns the stored id of each reading by minute. */
  async function deliver(deviceId: string, readings: Reading[], arrival: Arrival): Promise<Map<number, string>> {
    const ids = new Map<number, string>();
    const arriving = arrival.order.map((i) => readings[i]!);
    const bounds = [...new Set(arrival.cuts.map((c) => c % arriving.length))].filter((c) => c > 0).sort((a, b) => a - b);
    const chunks = [...bounds, arriving.length].map((end, k, all) => arriving.slice(k === 0 ? 0 : all[k - 1], end));
    const send = async (chunk: Reading[], k: number) => {
      if (arrival.batched[k % arrival.batched.length]) {
        const res = await api
          .post(`/api/v1/devices/${deviceId}/readings/batch`)
          .set(auth)
          .send({readings: chunk.map((r) => ({temperatureCelsius: r.temperatureCelsius, recordedAt: at(r.minute)}))});
        expect(res.status).toBe(200);
        for (const item of res.body.items as {index: number; id: string}[]) ids.set(chunk[item.index]!.minute, item.id);
      } else {
        for (const r of chunk) {
          const res = await api
            .post(`/api/v1/devices/${deviceId}/readings`)
            .set(auth)
            .send({temperatureCelsius: r.temperatureCelsius, recordedAt: at(r.minute)});
          expect(res.status).toBe(201);
          ids.set(r.minute, res.body.reading.id);
        }
      }
    };
    // Chunks go in groups; the chunks of one group are sent at the same time (they race).
    for (let k = 0, g = 0; k < chunks.length; g++) {
      const size = arrival.groupSizes[g % arrival.groupSizes.length]!;
      await Promise.all(chunks.slice(k, k + size).map((chunk, j) => send(chunk, k + j)));
      k += size;
    }
    return ids;
  }

  // A case costs about 0.2 s (rules, up to 24 readings, the alerts read back): some 300 cases in a
  // minute here, a few hundred more on an idle machine.
  const budget: PropertyBudget = {searchMs: 60_000, minRuns: 60};
  it(
    "stores the episodes in-order arrival gives, whatever the order, batching and concurrency (property)",
    {timeout: propertyTimeout(budget)},
    async () => {
      let run = 0;
      await checkProperty(
        "alert episodes by arrival",
        scenario,
        async ({readings, rules, arrival}) => {
          const deviceId = await createDevice(api, auth, `ORDER-${run++}`);
          const ruleIds = new Map<string, Rule>();
          for (const rule of rules) {
            const res = await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(auth).send(rule);
            expect(res.status).toBe(201);
            ruleIds.set(res.body.id, rule);
          }
          const ids = await deliver(deviceId, readings, arrival);

          const alerts = (await api.get(`/api/v1/devices/${deviceId}/alerts`).set(auth)).body as {
            ruleId: string;
            readingId: string;
            temperatureCelsius: number;
            breachStartedAt: string;
            firedAt: string;
            retractedAt: string | null;
            lastReadingAt: string;
            peakTemperatureCelsius: number;
            readingCount: number;
            resolvedAt: string | null;
          }[];
          for (const [ruleId, rule] of ruleIds) {
            // Retracted episodes are the record of what a late reading undid: kept, and not what the readings give.
            const stored = alerts
              .filter((a) => a.ruleId === ruleId && a.retractedAt === null)
              .map((a) => ({
                breachStartedAt: a.breachStartedAt,
                firedAt: a.firedAt,
                temperatureCelsius: a.temperatureCelsius,
                lastReadingAt: a.lastReadingAt,
                peak: a.peakTemperatureCelsius,
                count: a.readingCount,
                resolvedAt: a.resolvedAt,
                readingId: a.readingId
              }))
              .sort((a, b) => a.firedAt.localeCompare(b.firedAt));
            const expected = expectedEpisodes(rule, readings).map((e) => ({
              ...e,
              readingId: ids.get((Date.parse(e.firedAt) - START) / 60_000)
            }));
            expect(stored, JSON.stringify(rule)).toEqual(expected);
          }
        },
        budget
      );
    }
  );
});
