/**
 * mqtt-oversize: what a client without credentials costs the MQTT process when it announces a huge
 * packet (docs/aedes-persistent-subscribe.md, "Memory before authentication").
 *
 *   npm run bench:mqtt-oversize
 *
 * Subject: the MQTT-only process (`npm run mqtt`, production mode) on a free port. A raw TCP client
 * sends a CONNECT fixed header announcing 250 MiB, then up to BENCH_OVERSIZE_FILLER_MB (default 96)
 * MiB of filler, 1 MiB at a time with backpressure, until the server closes the connection.
 * - RESULT mqtt-oversize-connect-read: bytes the server had read from that connection when it
 *   closed it (its MQTT_FRAME_TOO_LARGE log line; at most one socket read), one connection; also
 *   printed: bytes the client could write before the close (kernel buffers included).
 * - RESULT mqtt-oversize-rss: the process's RSS growth (MB) once BENCH_OVERSIZE_CONNECTIONS (200)
 *   such connections at once have been closed (after a 1 s settle), and its peak while they ran
 *   (sampled every 20 ms); the per-address cap of unauthenticated connections is off for this run
 *   (MQTT_MAX_UNAUTHENTICATED_PER_ADDRESS=0: every client here is 127.0.0.1), so the frame guard
 *   alone is measured. Baseline: the RSS growth of as many connections that send nothing, measured
 *   while they are open (what a connection costs anyway).
 * Safety: a client stops pumping once the process has grown by more than 1 GB (the code before the
 * frame guard buffered every byte: never run 200 connections against it).
 * Environment: BENCH_DATABASE_URL, REDIS_URL, BENCH_OVERSIZE_CONNECTIONS, BENCH_OVERSIZE_FILLER_MB.
 */
import net from "node:net";
import {setTimeout as sleep} from "node:timers/promises";
import {rssKb, startMqttProcess} from "./lib/app.js";
import {freshDatabases} from "./lib/db.js";
import {runMain} from "./lib/harness.js";

const CONNECTIONS = Number(process.env.BENCH_OVERSIZE_CONNECTIONS ?? 200);
const FILLER_BYTES = Number(process.env.BENCH_OVERSIZE_FILLER_MB ?? 96) * 1024 * 1024;
const DECLARED_BYTES = 250 * 1024 * 1024;
const SAFETY_GROWTH_KB = 1024 * 1024;
/**
 * Targets: one socket read (Node reads up to 64 KiB at a time: the guard finds the header in the
 * first read and drops that read whole, none of it reaching aedes); a few MB for 200 connections.
 */
const READ_TARGET_BYTES = 64 * 1024;
const RSS_TARGET_MB = 16;

/** A CONNECT fixed header announcing `bytes` (MQTT's variable byte integer, low bits first). */
function connectHeader(bytes: number): Buffer {
  const out = [0x10];
  do {
    let byte = bytes % 128;
    bytes = Math.floor(bytes / 128);
    if (bytes > 0) byte |= 0x80;
    out.push(byte);
  } while (bytes > 0);
  return Buffer.from(out);
}

const FILLER = Buffer.alloc(1024 * 1024, 0x61);

/** One oversized CONNECT: resolves with the bytes written before the server closed the connection. */
function oversized(port: number, stop: () => boolean): Promise<number> {
  return new Promise((resolve) => {
    let written = 0;
    let closed = false;
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => undefined);
    socket.once("close", () => {
      closed = true;
      resolve(written);
    });
    socket.once("connect", () => {
      void (async () => {
        socket.write(connectHeader(DECLARED_BYTES));
        written += 5;
        while (!closed && written < FILLER_BYTES && !stop()) {
          written += FILLER.length;
          if (!socket.write(FILLER))
            await new Promise<void>((next) => {
              socket.once("drain", next);
              socket.once("close", next);
            });
        }
        socket.destroy();
      })();
    });
  });
}

/** Connections that send nothing, open at once: resolves when all are connected, with a closer. */
async function idle(port: number, count: number): Promise<() => void> {
  const sockets = await Promise.all(
    Array.from(
      {length: count},
      () =>
        new Promise<net.Socket>((resolve) => {
          const socket = net.connect(port, "127.0.0.1", () => resolve(socket));
          socket.on("error", () => undefined);
        })
    )
  );
  return () => sockets.forEach((socket) => socket.destroy());
}

async function main() {
  const {url, analyticsUrl} = await freshDatabases("st_bench_mqtt_oversize");
  const broker = await startMqttProcess({
    url,
    analyticsUrl,
    extra: {MQTT_MAX_UNAUTHENTICATED_PER_ADDRESS: "0", MQTT_MAX_CONNECTIONS: "100000"}
  });
  const pid = broker.child.pid!;
  try {
    await sleep(1_000);
    const start = rssKb(pid)!;
    const grownTooMuch = () => (rssKb(pid) ?? 0) - start > SAFETY_GROWTH_KB;

    // One connection: how much the server reads before it closes.
    const written = await oversized(broker.port, grownTooMuch);
    await sleep(200);
    const reads = [...broker.output().matchAll(/"bytesRead":\s*(\d+)/g)].map((match) => Number(match[1]));
    const read = reads.at(-1);
    console.log(
      `one oversized CONNECT: server read ${read ?? "?"} bytes before closing; the client wrote ${written} bytes before the close; RSS ${(start / 1024).toFixed(1)} → ${(rssKb(pid)! / 1024).toFixed(1)} MB`
    );
    const readMet = read !== undefined && read <= READ_TARGET_BYTES;
    console.log(
      `RESULT mqtt-oversize-connect-read value=${read ?? "unknown"} written=${written} target=<=${READ_TARGET_BYTES}${readMet ? "" : " (missed)"}`
    );

    // Baseline: as many connections that only connect.
    await sleep(500);
    const idleBefore = rssKb(pid)!;
    const closeIdle = await idle(broker.port, CONNECTIONS);
    await sleep(500);
    const idleGrowthMb = (rssKb(pid)! - idleBefore) / 1024;
    closeIdle();
    await sleep(1_000);

    // Subject: as many oversized CONNECTs at once.
    const before = rssKb(pid)!;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssKb(pid) ?? 0)), 20);
    const started = performance.now();
    const writtenEach = await Promise.all(Array.from({length: CONNECTIONS}, () => oversized(broker.port, grownTooMuch)));
    const elapsedMs = performance.now() - started;
    await sleep(1_000);
    clearInterval(sampler);
    const after = rssKb(pid)!;
    const growthMb = (after - before) / 1024;
    const peakMb = (peak - before) / 1024;
    const refused = /mqtt_connections_refused_total\{reason="frame_too_large"\} (\d+)/.exec(await broker.metrics())?.[1];
    console.log(
      `${CONNECTIONS} oversized CONNECTs at once: closed after ${elapsedMs.toFixed(0)} ms; the clients wrote ${(writtenEach.reduce((a, b) => a + b, 0) / 1024 / 1024).toFixed(1)} MiB in all; refused for frame_too_large: ${refused}; RSS ${(before / 1024).toFixed(1)} → ${(after / 1024).toFixed(1)} MB (peak +${peakMb.toFixed(1)} MB)`
    );
    console.log(`baseline: ${CONNECTIONS} idle connections, open: +${idleGrowthMb.toFixed(1)} MB`);
    const rssMet = growthMb <= RSS_TARGET_MB;
    console.log(
      `RESULT mqtt-oversize-rss value=${growthMb.toFixed(1)} peak=${peakMb.toFixed(1)} baseline=${idleGrowthMb.toFixed(1)} connections=${CONNECTIONS} unit=MB target=<=${RSS_TARGET_MB}${rssMet ? "" : " (missed)"}`
    );
  } finally {
    await broker.stop();
  }
}

runMain(main);
