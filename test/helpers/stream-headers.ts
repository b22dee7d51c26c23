import type {Test} from "supertest";

/**
 * A live stream (text/event-stream) never ends: for such a request its status and headers are the
 * answer. The response is closed as soon as they arrive; any other answer is read and parsed as JSON.
 */
export function untilStreamHeaders<R extends Test>(request: R): R {
  return request.buffer(true).parse((res, done) => {
    if (String(res.headers["content-type"]).startsWith("text/event-stream")) {
      done(null, {});
      (res as unknown as {destroy(): void}).destroy();
      return;
    }
    let text = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => (text += chunk));
    res.on("end", () => done(null, text ? JSON.parse(text) : {}));
  });
}
