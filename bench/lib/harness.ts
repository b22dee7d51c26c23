/**
 * Every benchmark part compares a subject with a baseline measured in the same process run,
 * alternating rounds so that machine noise hits both alike, and ends with one line:
 *   RESULT <name> value=<subject> baseline=<baseline> ratio=<subject/baseline> target=<target>
 */
export interface Part {
  name: string;
  unit: string;
  /** e.g. ">= 0.60" or "<= 1.5" */
  target: string;
  warmupRounds?: number;
  rounds: number;
  subject: {label: string; run: () => Promise<number>};
  baseline: {label: string; run: () => Promise<number>};
  /** Extra figures worth printing (p99, RSS …), gathered by the part. */
  notes?: () => Record<string, string | number>;
  /**
   * A second criterion measured after the rounds, from their medians (a p99 at half the subject's
   * rate, say): its fields are printed and appended to the RESULT line, and `met: false` marks
   * the part as missed.
   */
  finish?: (medians: {value: number; baseline: number}) => Promise<{fields: Record<string, string | number>; met: boolean}>;
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const fmt = (value: number) => (Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 1 ? value.toFixed(2) : value.toPrecision(3));

export async function runPart(part: Part): Promise<{value: number; baseline: number; ratio: number; met: boolean}> {
  console.log(`\n== ${part.name} (${part.unit}) ==`);
  for (let i = 0; i < (part.warmupRounds ?? 1); i++) {
    await part.subject.run();
    await part.baseline.run();
  }
  const subject: number[] = [];
  const baseline: number[] = [];
  for (let round = 0; round < part.rounds; round++) {
    // Alternate which goes first, so neither always runs on a warmer (or busier) machine.
    if (round % 2 === 0) {
      subject.push(await part.subject.run());
      baseline.push(await part.baseline.run());
    } else {
      baseline.push(await part.baseline.run());
      subject.push(await part.subject.run());
    }
  }
  const rows = [
    [part.subject.label, subject],
    [part.baseline.label, baseline]
  ] as const;
  console.log(`${"".padEnd(48)} ${"median".padStart(12)} ${"min".padStart(12)} ${"max".padStart(12)}`);
  for (const [label, values] of rows) {
    console.log(`${label.padEnd(48)} ${fmt(median(values)).padStart(12)} ${fmt(Math.min(...values)).padStart(12)} ${fmt(Math.max(...values)).padStart(12)}`);
  }
  for (const [key, value] of Object.entries(part.notes?.() ?? {})) console.log(`  ${key}: ${value}`);
  const value = median(subject);
  const base = median(baseline);
  const ratio = value / base;
  const [op, threshold] = part.target.split(" ") as [string, string];
  const finished = await part.finish?.({value, baseline: base});
  for (const [key, field] of Object.entries(finished?.fields ?? {})) console.log(`  ${key}: ${field}`);
  const extra = Object.entries(finished?.fields ?? {})
    .map(([key, field]) => ` ${key}=${field}`)
    .join("");
  const met = (op === ">=" ? ratio >= Number(threshold) : ratio <= Number(threshold)) && (finished?.met ?? true);
  console.log(`RESULT ${part.name} value=${fmt(value)} baseline=${fmt(base)} ratio=${ratio.toFixed(3)} target=${part.target.replace(" ", "")}${extra}${met ? "" : " (missed)"}`);
  return {value, baseline: base, ratio, met};
}

/** A benchmark script's entry: exit 0 when it finished, 1 (with the error) when it did not. */
export function runMain(main: () => Promise<unknown>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    }
  );
}
