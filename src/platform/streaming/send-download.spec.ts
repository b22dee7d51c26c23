import http from "node:http";
import type {AddressInfo} from "node:net";
import {Readable} from "node:stream";
import {setTimeout as sleep} from "node:timers/promises";
import {afterEach, describe, expect, it} from "vitest";
import {type DownloadOutcome, sendDownload} from "./send-download.js";

/** A source that is slow itself: `chunks` pieces of `size` bytes, one every `everyMs`. */
function slowSource(chunks: number, size: number, everyMs: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent === chunks) return void this.push(null);
      sent++;
      setTimeout(() => this.push(Buffer.alloc(size, 97)), everyMs);
    }
  });
}

describe("sendDownload's minimum rate", () => {
  let server: http.Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  it("never cuts a client that keeps up with a source that is slow itself", async () => {
    const outcomes: DownloadOutcome[] = [];
    server = http.createServer((req, res) => {
      const download = {stream: slowSource(8, 10, 150), contentType: "text/plain", fileName: "slow.txt"};
      void sendDownload(req, res, download, {stallTimeoutMs: 10_000, minBytesPerSecond: 10_000, rateWindowMs: 200}).then((o) =>
        outcomes.push(o)
      );
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const {port} = server.address() as AddressInfo;
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get({port, host: "127.0.0.1", path: "/"}, (res) => {
          let text = "";
          res.setEncoding("latin1");
          res.on("data", (chunk: string) => (text += chunk));
          res.on("end", () => resolve(text));
          res.on("error", reject);
        })
        .on("error", reject);
    });
    // 80 bytes over ~1.2 s: far below 10,000 bytes/s, yet the client took every byte at once.
    expect(body).toBe("a".repeat(80));
    await sleep(10);
    expect(outcomes).toEqual([{completed: true, bytes: 80}]);
  });
});
