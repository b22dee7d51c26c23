/**
 * npm run bench: every part in turn, each in its own process (own databases, own API), then the
 * RESULT lines again together. A part that fails is reported and the others still run.
 */
import {spawn} from "node:child_process";

const PARTS = [
  "ingest-batch",
  "ingest-input",
  "ingest-orm",
  "ingest-single",
  "late-reading",
  "history-depth",
  "aggregate",
  "weekly-cache",
  "mqtt-ingest",
  "mqtt-oversize",
  "export",
  "retention-drop",
  "request-cost",
  "multitenant",
  "no-data-sweep",
  "backtest",
  "notify",
  "stream",
  "multitenant-sql",
  "tenant-memory"
];
const only = process.argv.slice(2);
const results: string[] = [];
const started = Date.now();
let failures = 0;

for (const part of PARTS.filter((p) => only.length === 0 || only.includes(p))) {
  console.log(`\n######## ${part} ########`);
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ["--import", "@swc-node/register/esm-register", `bench/${part}.ts`], {
      stdio: ["ignore", "pipe", "inherit"]
    });
    child.stdout.on("data", (chunk: Buffer) => {
      process.stdout.write(chunk);
      for (const line of chunk.toString().split("\n")) if (line.startsWith("RESULT ")) results.push(line);
    });
    child.on("exit", resolve);
  });
  if (code !== 0) {
    failures++;
    results.push(`RESULT ${part} failed (exit ${code})`);
  }
}
console.log(`\n======== summary (${((Date.now() - started) / 60_000).toFixed(1)} min) ========`);
for (const line of results) console.log(line);
process.exit(failures ? 1 : 0);
