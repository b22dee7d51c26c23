import type {IncomingMessage, ServerResponse} from "node:http";
import type {Readable} from "node:stream";
import {pipeline} from "node:stream/promises";
import {logger} from "@tsed/common";

export interface Download {
  stream: Readable;
  contentType: string;
  fileName: string;
  /** Further headers (known before the first byte). */
  headers?: Record<string, string>;
}

/** How slow a client may be before it is disconnected. */
export interface DownloadPace {
  /** No byte taken for this long. */
  stallTimeoutMs: number;
  /** Fewer than this many bytes per second over a window of rateWindowMs while the client, not the source, holds the transfer back (0: no minimum). */
  minBytesPerSecond: number;
  rateWindowMs: number;
}

export interface DownloadOutcome {
  completed: boolean;
  bytes: number;
}

export class DownloadAbortedError extends Error {
  constructor() {
    super("The client went away before the download started");
    this.name = "DownloadAbortedError";
  }
}

/**
 * Sends `download` as a 200 attachment, streamed (chunked): `pipeline` writes a chunk only when
 * the socket took the previous ones, so memory stays flat however large the file and however
 * slow the client.
 *
 * - Nothing is sent before the source has its first bytes (or ended): a source that fails at
 *   once (a bad query, a timeout while Postgres sorts) rejects, and the caller answers with an
 *   error status as usual. A client that leaves meanwhile destroys the source.
 * - From the first byte on, a client that stops reading for `stallTimeoutMs`, or goes away, ends
 *   it: the source stream is destroyed (which stops whatever produces it). So does a client that
 *   reads, but slower than `minBytesPerSecond` over a `rateWindowMs` window: a few bytes now and
 *   then keep the socket from ever idling, and would otherwise hold the source (a database
 *   connection) for as long as the statement may run. Only a client that holds the transfer back
 *   is cut: at the window's end the response must be waiting for the socket to drain, so a
 *   source that is slow itself (Postgres still producing) never gets its reader cut. A failure then cannot
 *   become an error status any more: the connection is cut instead, so the client sees a
 *   truncated transfer (no final chunk), never a file that looks complete.
 * @throws the source's error, or DownloadAbortedError, when it happens before the first byte
 */
export async function sendDownload(
  req: IncomingMessage,
  res: ServerResponse,
  download: Download,
  pace: DownloadPace
): Promise<DownloadOutcome> {
  const {stallTimeoutMs, minBytesPerSecond, rateWindowMs} = pace;
  await firstBytes(download.stream, res);
  let bytes = 0;
  res.statusCode = 200;
  res.setHeader("Content-Type", download.contentType);
  res.setHeader("Content-Disposition", `attachment; filename="${download.fileName}"`);
  res.setHeader("Cache-Control", "no-store");
  res.setHeader("X-Content-Type-Options", "nosniff");
  for (const [name, value] of Object.entries(download.headers ?? {})) res.setHeader(name, value);
  const socket = req.socket;
  const onStall = () => socket.destroy(new Error(`no bytes taken for ${stallTimeoutMs} ms`));
  socket.setTimeout(stallTimeoutMs, onStall);
  const minBytesPerWindow = (minBytesPerSecond * rateWindowMs) / 1000;
  let bytesAtWindowStart = 0;
  const rateCheck =
    minBytesPerWindow > 0
      ? setInterval(() => {
          const moved = bytes - bytesAtWindowStart;
          bytesAtWindowStart = bytes;
          if (moved < minBytesPerWindow && res.writableNeedDrain)
            socket.destroy(new Error(`took ${moved} bytes in ${rateWindowMs} ms, below ${minBytesPerSecond} bytes/s`));
        }, rateWindowMs)
      : undefined;
  try {
    const sent = pipeline(download.stream, res);
    // Counting only: pipeline's pipe() pauses the stream whenever the socket is full, this listener too.
    download.stream.on("data", (chunk: Buffer) => void (bytes += chunk.length));
    await sent;
    return {completed: true, bytes};
  } catch (error) {
    // The client went away or stalled, or the source failed: make sure neither side lingers.
    download.stream.destroy();
    res.destroy();
    logger().warn({event: "DOWNLOAD_ABORTED", fileName: download.fileName, bytes, reason: (error as Error).message});
    return {completed: false, bytes};
  } finally {
    clearInterval(rateCheck);
    socket.setTimeout(0);
    socket.removeListener("timeout", onStall);
  }
}

/** Resolves once `stream` has data to read or has ended; rejects on its error, or when the client leaves first (the stream is then destroyed). */
function firstBytes(stream: Readable, res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (error?: Error) => {
      stream.removeListener("readable", onReadable);
      stream.removeListener("end", onReadable);
      stream.removeListener("error", done);
      stream.removeListener("close", onClose);
      res.removeListener("close", onClientGone);
      if (error) reject(error);
      else resolve();
    };
    const onReadable = () => done();
    const onClose = () => done(new DownloadAbortedError());
    const onClientGone = () => {
      stream.destroy();
      done(new DownloadAbortedError());
    };
    stream.once("readable", onReadable);
    stream.once("end", onReadable);
    stream.once("error", done);
    stream.once("close", onClose);
    res.once("close", onClientGone);
  });
}
