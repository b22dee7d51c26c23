import fc from "fast-check";
import pg from "pg";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {violates, violatesSql} from "./alert-predicate.js";
import {AlertCondition} from "./alert-rule.entity.js";

/**
 * The predicate's two renderings agree: violatesSql evaluated by Postgres (as the ingest statement
 * evaluates it, on float8 columns) and violates in TypeScript (as the state machine evaluates it).
 * If they did not, a reading the state machine would open an episode for could be stored by the
 * autocommitted statement without one, or the other way round.
 */
describe("the alert predicate, in SQL and in TypeScript", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = new pg.Client({connectionString: process.env.DATABASE_URL});
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
  });

  /** Both renderings of a set of cases, the SQL ones in one statement. */
  async function evaluate(cases: readonly {condition: string; threshold: number; t: number}[]) {
    const {rows} = await db.query<{v: boolean}>(
      `select ${violatesSql({condition: `c."condition"`, threshold: `c."threshold"`}, `c."t"`)} as "v"
         from unnest($1::text[], $2::float8[], $3::float8[]) with ordinality as c("condition", "threshold", "t", "n")
        order by c."n"`,
      [cases.map((c) => c.condition), cases.map((c) => c.threshold), cases.map((c) => c.t)]
    );
    return {
      sql: rows.map((row) => row.v),
      ts: cases.map((c) => violates({condition: c.condition as AlertCondition, thresholdCelsius: c.threshold}, c.t))
    };
  }

  it("agrees with violates on generated readings and thresholds, at, around and across the threshold (property)", async () => {
    const temperature = fc.double({min: -273.15, max: 1000, noNaN: true});
    const aCase = fc.oneof(
      fc.record({condition: fc.constantFrom(...Object.values(AlertCondition)), threshold: temperature, t: temperature}),
      // At the threshold, and one representable step either side of it.
      fc
        .record({condition: fc.constantFrom(...Object.values(AlertCondition)), threshold: temperature, step: fc.constantFrom(-1, 0, 1)})
        .map(({condition, threshold, step}) => ({condition, threshold, t: step === 0 ? threshold : nextDouble(threshold, step)}))
    );
    const seed = Date.now();
    console.log(`alert predicate property: seed ${seed}`);
    await fc.assert(
      fc.asyncProperty(fc.array(aCase, {minLength: 1, maxLength: 200}), async (cases) => {
        const {sql, ts} = await evaluate(cases);
        expect(sql).toEqual(ts);
      }),
      {seed, numRuns: 100, interruptAfterTimeLimit: 20_000, endOnFailure: true}
    );
  });

  it("violates nothing under a condition it does not know", async () => {
    expect((await evaluate([{condition: "sideways", threshold: 0, t: 1}])).sql).toEqual([false]);
  });
});

/** The next double after x towards +∞ (direction 1) or −∞ (−1). */
function nextDouble(x: number, direction: 1 | -1): number {
  if (x === 0) return direction * Number.MIN_VALUE;
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigInt64(0);
  view.setBigInt64(0, bits + BigInt(x > 0 === direction > 0 ? 1 : -1));
  return view.getFloat64(0);
}
