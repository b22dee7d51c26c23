import Http from "node:http";
import Https from "node:https";
import type {LookupFunction} from "node:net";
import {resolvePublic, WebhookUrlError} from "./public-address.js";

/** How much of a receiver's answer is read (and kept in the log): enough for an error message. */
export const MAX_RESPONSE_BYTES = 4 * 1024;

export interface SendOptions {
  timeoutMs: number;
  allowPrivate: boolean;
}

/** What one attempt gave: a status code, or an error when no answer came (refused, timed out, policy). */
export interface SendResult {
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  /** Retry-After of the answer, in milliseconds, when it had one. */
  retryAfterMs: number | null;
}

/**
 * One POST to a receiver. Written on node:http rather than fetch because the checks must hold on
 * the socket itself: the host is resolved once and every address checked (resolvePublic), and the
 * connection goes to a checked address through `lookup` (no second resolution a rebinding DNS
 * could answer differently); TLS still verifies the certificate against the host name. Redirects
 * are not followed (a 3xx is an answer like any other non-2xx), the body is read up to
 * MAX_RESPONSE_BYTES, and the whole exchange is bounded by `timeoutMs`.
 */
export async function postWebhook(url: URL, headers: Record<string, string>, body: string, options: SendOptions): Promise<SendResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let lookup: LookupFunction | undefined;
  if (!options.allowPrivate) {
    if (url.protocol !== "https:") return {statusCode: null, error: "url must use https", durationMs: elapsed(), retryAfterMs: null};
    try {
      const [first] = await resolvePublic(url.hostname);
      lookup = (_hostname, lookupOptions, callback) => {
        if ((lookupOptions as {all?: boolean}).all) (callback as (e: null, a: {address: string; family: number}[]) => void)(null, [first!]);
        else callback(null, first!.address, first!.family);
      };
    } catch (error) {
      const message = error instanceof WebhookUrlError ? error.message : "DNS resolution failed";
      return {statusCode: null, error: message, durationMs: elapsed(), retryAfterMs: null};
    }
  }
  const transport = url.protocol === "https:" ? Https : Http;
  return new Promise<SendResult>((resolve) => {
    let settled = false;
    const finish = (result: Omit<SendResult, "durationMs">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({...result, durationMs: elapsed()});
    };
    const request = transport.request(
      url,
      {
        method: "POST",
        headers: {
          ...headers,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          "user-agent": "smart-thermo-webhooks/1"
        },
        lookup,
        agent: false
      },
      (response) => {
        let read = 0;
        const retryAfterMs = parseRetryAfter(response.headers["retry-after"]);
        const done = () => {
          finish({statusCode: response.statusCode ?? null, error: null, retryAfterMs});
          response.destroy();
        };
        response.on("data", (chunk: Buffer) => {
          read += chunk.length;
          if (read >= MAX_RESPONSE_BYTES) done();
        });
        response.on("end", done);
        response.on("error", done);
      }
    );
    const timer = setTimeout(() => {
      finish({statusCode: null, error: `no answer within ${options.timeoutMs} ms`, retryAfterMs: null});
      request.destroy();
    }, options.timeoutMs);
    request.on("error", (error: NodeJS.ErrnoException) =>
      finish({statusCode: null, error: error.code ?? error.message, retryAfterMs: null})
    );
    request.end(body);
  });
}

/** `Retry-After`: seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | null {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return null;
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim()) * 1000;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
