/**
 * Preloaded into an API process by bench:tenant-memory (`node --expose-gc --import <this file>`):
 * a loopback HTTP endpoint on BENCH_MEMORY_PROBE_PORT that answers GET /memory with the process's
 * memory once it has settled — several full GCs with pauses between them (the unmapping of freed
 * pages runs after a GC, and V8's memory reducer starts 8 s into an idle period), then several
 * samples, of which it returns each field's median:
 *   { rss, rssAnon, rssFile, heapUsed, heapTotal, external, arrayBuffers }   (bytes)
 * rss is process.memoryUsage().rss; rssAnon and rssFile split it (/proc/self/status): anonymous
 * memory (heap, malloc) versus mapped files (the node binary's pages that this process touched).
 * Plain JavaScript: the API runs compiled (dist/), without a TypeScript loader. The same code runs
 * in every process the bench compares, so what it costs cancels out.
 */
import {readFileSync} from "node:fs";
import {createServer} from "node:http";
import {setTimeout as sleep} from "node:timers/promises";

const port = Number(process.env.BENCH_MEMORY_PROBE_PORT);
const FULL_GCS = Number(process.env.BENCH_MEMORY_FULL_GCS ?? 4);
const PAUSE_MS = Number(process.env.BENCH_MEMORY_PAUSE_MS ?? 10_000);
const SAMPLES = 5;

if (typeof globalThis.gc !== "function") throw new Error("memory-probe needs node --expose-gc");

function statusKb(field) {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"));
  return match ? Number(match[1]) * 1024 : NaN;
}

function sample() {
  const {rss, heapUsed, heapTotal, external, arrayBuffers} = process.memoryUsage();
  return {rss, rssAnon: statusKb("RssAnon"), rssFile: statusKb("RssFile"), heapUsed, heapTotal, external, arrayBuffers};
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function settledMemory() {
  for (let i = 0; i < FULL_GCS; i++) {
    globalThis.gc();
    await sleep(250);
  }
  await sleep(PAUSE_MS);
  globalThis.gc();
  await sleep(500);
  const samples = [];
  for (let i = 0; i < SAMPLES; i++) {
    if (i > 0) await sleep(200);
    samples.push(sample());
  }
  return Object.fromEntries(Object.keys(samples[0]).map((key) => [key, median(samples.map((one) => one[key]))]));
}

if (port) {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || req.url !== "/memory") {
      res.writeHead(404).end();
      return;
    }
    settledMemory().then(
      (memory) => res.writeHead(200, {"content-type": "application/json"}).end(JSON.stringify(memory)),
      (error) => res.writeHead(500).end(String(error))
    );
  });
  server.listen(port, "127.0.0.1");
  // Never what keeps the API process alive: its own shutdown decides.
  server.unref();
}
