/**
 * Every benchmark part compares a subject with a baseline measured in the same process run,
 * alternating rounds so that machine noise hits both alike, and ends with one line:
 *   RESULT <name> value=<subject> baseline=<baseline> ratio=<subject/baseline> target=<target>
 * A part with a `floor` (a cost both sides pay and neither can change, measured in the same
 * rounds) compares what is above it instead:
 *   RESULT <name> value=<subject> baseline=<baseline> floor=<floor> ratio=<(subject−floor)/(baseline−floor)> target=<target>
 * A target on the subject's absolute value (a drop time, say) reads `target=value<=1000ms`.
 * A missed target says "(missed)" at the end of the line; the exit code stays 0 (the figures are
 * for people to read, not a gate).
 */
export interface Part {
  name: string;
  unit: string;
  /** e.g. ">= 0.60" or "<= 1.5": on the ratio, or with `targetOn: "value"` on the subject's median itself (in `unit`). */
  target: string;
  /** What `target` bounds: the ratio (default), or the subject's absolute value (a time, say). */
  targetOn?: "ratio" | "value";
  warmupRounds?: number;
  rounds: number;
  subject: {label: string; run: () => Promise<number>};
  baseline: {label: string; run: () => Promise<number>};
  /** Measured in every round next to subject and baseline; the ratio is then taken above it. */
  floor?: {label: string; run: () => Promise<number>};
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
    await part.floor?.run();
  }
  const series = [
    {label: part.subject.label, run: part.subject.run, values: [] as number[]},
    {label: part.baseline.label, run: part.baseline.run, values: [] as number[]},
    ...(part.floor ? [{label: part.floor.label, run: part.floor.run, values: [] as number[]}] : [])
  ];
  for (let round = 0; round < part.rounds; round++) {
    // Rotate which goes first, so none always runs on a warmer (or busier) machine.
    for (let i = 0; i < series.length; i++) {
      const one = series[(round + i) % series.length]!;
      one.values.push(await one.run());
    }
  }
  const [subject, baseline, floor] = series.map((one) => one.values) as [number[], number[], number[] | undefined];
  const rows = series.map((one) => [one.label, one.values] as const);
  console.log(`${"".padEnd(48)} ${"median".padStart(12)} ${"min".padStart(12)} ${"max".padStart(12)}`);
  for (const [label, values] of rows) {
    console.log(
      `${label.padEnd(48)} ${fmt(median(values)).padStart(12)} ${fmt(Math.min(...values)).padStart(12)} ${fmt(Math.max(...values)).padStart(12)}`
    );
  }
  for (const [key, value] of Object.entries(part.notes?.() ?? {})) console.log(`  ${key}: ${value}`);
  const value = median(subject);
  const base = median(baseline);
  const floorValue = floor ? median(floor) : undefined;
  const ratio = floorValue === undefined ? value / base : (value - floorValue) / (base - floorValue);
  const [op, threshold] = part.target.split(" ") as [string, string];
  const finished = await part.finish?.({value, baseline: base});
  for (const [key, field] of Object.entries(finished?.fields ?? {})) console.log(`  ${key}: ${field}`);
  const extra = Object.entries(finished?.fields ?? {})
    .map(([key, field]) => ` ${key}=${field}`)
    .join("");
  const bounded = part.targetOn === "value" ? value : ratio;
  const met = (op === ">=" ? bounded >= Number(threshold) : bounded <= Number(threshold)) && (finished?.met ?? true);
  const floorField = floorValue === undefined ? "" : ` floor=${fmt(floorValue)}`;
  // A target on the value says so, with its unit: `target=value<=1000ms`, not a ratio's `target=<=1`.
  const target = part.targetOn === "value" ? `value${op}${threshold}${part.unit}` : `${op}${threshold}`;
  console.log(
    `RESULT ${part.name} value=${fmt(value)} baseline=${fmt(base)}${floorField} ratio=${ratio.toFixed(3)} target=${target}${extra}${met ? "" : " (missed)"}`
  );
  return {value, baseline: base, ratio, met};
}

/** A benchmark script's entry: exit 0 when it finished (met or missed), 1 (with the error) when it did not. */
export function runMain(main: () => Promise<unknown>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    }
  );
}
