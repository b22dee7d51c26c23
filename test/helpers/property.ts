import fc from "fast-check";

/** How long a property over HTTP may search, and how many cases it must at least get through. */
export interface PropertyBudget {
  /** Time for the search (fast-check `interruptAfterTimeLimit`): the run in flight at its end is abandoned and awaited. */
  searchMs: number;
  /** Time for shrinking a counterexample once one is found (a replay of its seed and path). */
  shrinkMs?: number;
  /** Fewer cases than this in `searchMs` fails the test: the property stopped searching, it did not hold. */
  minRuns: number;
  /** At most this many cases (the budget usually ends the search first). */
  maxRuns?: number;
}

/** The vitest timeout of a test running one property with this budget: the budget, the run in flight at its end, set-up. */
export const propertyTimeout = (budget: PropertyBudget) => budget.searchMs + (budget.shrinkMs ?? DEFAULT_SHRINK_MS) + 60_000;

const DEFAULT_SHRINK_MS = 20_000;

/**
 * Runs an async property under a time budget and returns how many cases passed. Each case of the
 * properties this serves costs HTTP round trips (a fifth of a second and more), so fast-check's
 * own shrinking would outlive any test timeout and a failure would read as a timeout without a
 * counterexample. Instead:
 * - the search runs with `endOnFailure` and `interruptAfterTimeLimit`; the seed is random unless
 *   PROPERTY_SEED is set, and is printed before the search starts;
 * - on a failure the unshrunk counterexample is printed at once, then its seed and path are
 *   replayed with shrinking for `shrinkMs`, and the test fails with both reports (a replay that no
 *   longer fails, e.g. a lost race, says so and keeps the first);
 * - a search that got through fewer than `minRuns` cases fails: a property that became slow must
 *   not pass by trying little.
 */
export async function checkProperty<T>(
  name: string,
  arbitrary: fc.Arbitrary<T>,
  predicate: (value: T) => Promise<void>,
  budget: PropertyBudget
): Promise<number> {
  const seed = process.env.PROPERTY_SEED ? Number(process.env.PROPERTY_SEED) : (Math.random() * 2 ** 31) | 0;
  console.info(`[property] ${name}: seed ${seed} (PROPERTY_SEED=${seed} replays it), search budget ${budget.searchMs} ms`);
  // interruptAfterTimeLimit races the run in flight and abandons it: wait for it before the test moves on.
  let inFlight: Promise<void> = Promise.resolve();
  const property = fc.asyncProperty(arbitrary, (value) => {
    const run = predicate(value);
    inFlight = run.catch(() => undefined);
    return run;
  });
  const started = Date.now();
  const search = await fc.check(property, {
    seed,
    numRuns: budget.maxRuns ?? 100_000,
    endOnFailure: true,
    includeErrorInReport: true,
    interruptAfterTimeLimit: budget.searchMs
  });
  await inFlight;
  const elapsed = Date.now() - started;
  if (search.failed && search.counterexamplePath !== null) {
    const found = fc.defaultReportMessage(search);
    console.error(`[property] ${name}: counterexample (unshrunk), ${search.numRuns} cases in ${elapsed} ms\n${found}`);
    const replay = await fc.check(property, {
      seed,
      path: search.counterexamplePath,
      includeErrorInReport: true,
      interruptAfterTimeLimit: budget.shrinkMs ?? DEFAULT_SHRINK_MS
    });
    await inFlight;
    const shrunk =
      replay.failed && replay.counterexamplePath !== null ? fc.defaultReportMessage(replay) : "(the replay passed: not shrunk)";
    throw new Error(`Property "${name}" failed.\n\nShrunk:\n${shrunk}\n\nFirst found:\n${found}`, {
      cause: replay.failed ? replay.errorInstance : search.errorInstance
    });
  }
  if (search.failed) throw new Error(`Property "${name}": ${fc.defaultReportMessage(search)}`);
  console.info(`[property] ${name}: ${search.numRuns} cases passed in ${elapsed} ms (seed ${seed})`);
  if (search.numRuns < budget.minRuns) {
    throw new Error(
      `Property "${name}" tried only ${search.numRuns} cases in ${elapsed} ms (at least ${budget.minRuns} needed, seed ${seed})`
    );
  }
  return search.numRuns;
}
