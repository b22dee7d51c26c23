import Http from "node:http";
import type {AddressInfo} from "node:net";

export interface ReceivedRequest {
  path: string;
  headers: Http.IncomingHttpHeaders;
  body: string;
  at: number;
}

/** What the receiver answers for one request: a status (and headers), or `hang` to never answer. */
export type Answer = {status: number; headers?: Record<string, string>; body?: string} | "hang";

/**
 * A local webhook receiver on a free port: records every request and answers what the test's
 * `answer` says (200 by default).
 */
export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  answer: (request: ReceivedRequest) => Answer = () => ({status: 200});
  private server = Http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const received = {path: req.url ?? "/", headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), at: Date.now()};
      this.requests.push(received);
      const answer = this.answer(received);
      if (answer === "hang") return;
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body ?? "");
    });
  });

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return this;
  }

  url(path = "/hook"): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  on(path: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
