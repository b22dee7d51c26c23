import Http from "node:http";

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/**
 * A minimal Server-Sent Events reader over node:http, for tests that need to see the raw stream
 * (the `retry:` line, comments, the status of a refused request) and to stop reading on purpose.
 */
export class SseClient {
  status = 0;
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  retry: number | undefined;
  closed = false;
  body = "";
  private request: Http.ClientRequest | undefined;
  response: Http.IncomingMessage | undefined;

  static open(url: string, headers: Record<string, string> = {}, options: {paused?: boolean} = {}): Promise<SseClient> {
    const client = new SseClient();
    return new Promise((resolve, reject) => {
      client.request = Http.get(url, {headers: {Accept: "text/event-stream", ...headers}}, (response) => {
        client.status = response.statusCode ?? 0;
        client.response = response;
        response.setEncoding("utf8");
        response.on("close", () => (client.closed = true));
        if (options.paused) {
          // Reads nothing: the socket's buffers fill up, as with a client that stopped reading.
          response.pause();
          response.socket.pause();
          resolve(client);
          return;
        }
        let buffer = "";
        response.on("data", (chunk: string) => {
          client.body += chunk;
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            client.parse(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        });
        resolve(client);
      });
      client.request.on("error", (error) => (client.status ? (client.closed = true) : reject(error)));
    });
  }

  private parse(block: string): void {
    const event: SseEvent = {event: "message", data: ""};
    let isEvent = false;
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) this.comments.push(line.slice(1).trim());
      else if (line.startsWith("retry: ")) this.retry = Number(line.slice(7));
      else if (line.startsWith("id: ")) [event.id, isEvent] = [line.slice(4), true];
      else if (line.startsWith("event: ")) [event.event, isEvent] = [line.slice(7), true];
      else if (line.startsWith("data: ")) [event.data, isEvent] = [line.slice(6), true];
    }
    if (isEvent) this.events.push(event);
  }

  close(): void {
    this.request?.destroy();
  }
}
