import {readFileSync} from "node:fs";

/** A V8 CPU profile (`node --cpu-prof`): a call tree, and which node was on top at each sample. */
interface CpuProfile {
  nodes: {id: number; callFrame: {functionName: string; url: string; lineNumber: number}; children?: number[]}[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * The layers a request's CPU time is spent in, by where the function on top of the stack lives
 * (first match wins). "kernel I/O" is the time inside the socket write and read system calls.
 */
const LAYERS: [string, RegExp][] = [
  ["kernel I/O (socket syscalls)", /^native:(writeBuffer|writev|writeUtf8String|writeLatin1String|read|onStreamRead)$/],
  ["garbage collection", /^native:\(garbage collector\)$/],
  ["idle", /^native:\((idle|program)\)$/],
  ["promises and async context", /^(native:runMicrotasks|node:internal\/async_hooks|node:async_hooks|node:internal\/process\/task_queues)/],
  [
    "node http, net, streams",
    /^node:(_http|net|internal\/(streams|stream_base_commons|http|url)|events|internal\/util|buffer|internal\/buffer|internal\/timers|timers)/
  ],
  [
    "express, router, body parsing",
    /^(express|router|body-parser|raw-body|type-is|content-type|iconv-lite|on-finished|finalhandler|send|mime|negotiator|accepts|qs|parseurl)$/
  ],
  ["helmet", /^helmet$/],
  ["Ts.ED json-mapper (serialization)", /^@tsed\/json-mapper$/],
  ["ajv (validation)", /^(ajv|@tsed\/ajv)$/],
  ["passport, JWT, JWKS", /^(@tsed\/passport|passport|passport-jwt|passport-strategy|jsonwebtoken|jws|jwa|jwks-rsa|jose)$/],
  ["Ts.ED (di, platform, schema, core)", /^@tsed\//],
  ["MikroORM, knex", /^(@mikro-orm\/|knex|tarn)/],
  ["pg driver", /^(pg|pg-protocol|pg-types|pg-pool|postgres-|pg-copy-streams)/],
  ["Redis (ioredis, rate limits, BullMQ)", /^(ioredis|rate-limiter-flexible|bullmq|msgpackr|cluster-key-slot|denque|redis-)/],
  ["metrics (prom-client)", /^prom-client$/],
  ["this application (src/)", /^app$/],
  ["node other", /^node:/],
  ["native other", /^native:/]
];

/** Where a function lives: its npm package, a `node:` module, `app` (our sources), or `native:<name>`. */
function placeOf(url: string, functionName: string): string {
  if (!url) return `native:${functionName}`;
  const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith("node:")) return url;
  if (/\/src\//.test(url)) return "app";
  return url;
}

/**
 * Self time per layer (µs per request) and the top functions, over the samples taken between
 * `windowUs` (CLOCK_MONOTONIC µs, as `process.hrtime.bigint() / 1000n` gives in any process of the
 * machine): the load, not the start-up.
 */
export function summarizeCpuProfile(file: string, windowUs: [bigint, bigint], requests: number, topFunctions = 15) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfTime = new Map<number, number>();
  let time = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    time += delta;
    if (time < Number(windowUs[0]) || time > Number(windowUs[1])) continue;
    selfTime.set(profile.samples[i]!, (selfTime.get(profile.samples[i]!) ?? 0) + delta);
  }
  const layers = new Map<string, number>(LAYERS.map(([name]) => [name, 0]));
  const functions = new Map<string, number>();
  let total = 0;
  for (const [id, micros] of selfTime) {
    const {functionName, url, lineNumber} = nodes.get(id)!.callFrame;
    const place = placeOf(url, functionName);
    const layer = LAYERS.find(([, test]) => test.test(place))?.[0] ?? "other";
    layers.set(layer, (layers.get(layer) ?? 0) + micros);
    const at = place === "app" ? url.replace(/^.*\/src\//, "src/") : place;
    const label = url ? `${functionName || "(anonymous)"} ${at}:${lineNumber + 1}` : functionName;
    functions.set(label, (functions.get(label) ?? 0) + micros);
    total += micros;
  }
  const perRequest = (micros: number) => micros / Math.max(1, requests);
  return {
    totalMicrosPerRequest: perRequest(total),
    layers: [...layers]
      .filter(([, micros]) => micros > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([name, micros]) => ({name, micros: perRequest(micros), share: micros / total})),
    functions: [...functions]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topFunctions)
      .map(([name, micros]) => ({name, micros: perRequest(micros), share: micros / total}))
  };
}
