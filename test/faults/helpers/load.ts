import {token} from "../../helpers/tokens.js";

/**
 * How a request ended without an HTTP response:
 * - `refused`: the connection was never made (ECONNREFUSED on connect), so the request never
 *   reached the server: the one way a server may leave a request unanswered while it stops.
 * - `dropped`: the connection was made and then closed or reset before a response came
 *   (ECONNRESET, EPIPE, "other side closed"): the server may have had the request.
 * - `timeout`: no response within the bound.
 */
export type NoResponse = "refused" | "dropped" | "timeout";

export interface Outcome {
  /** The HTTP status, or how it ended without one. */
  result: number | NoResponse;
  ms: number;
  retryAfter?: string | null;
  /** For a `dropped`: the error code or message, to tell what happened. */
  detail?: string;
  recordedAt: string;
  at: number;
}

export function noResponse(error: unknown): {result: NoResponse; detail: string} {
  const err = error as {name?: string; message?: string; code?: string; cause?: {code?: string; message?: string; name?: string}};
  if (err?.name === "TimeoutError" || err?.name === "AbortError") return {result: "timeout", detail: err.name};
  const code = err?.cause?.code ?? err?.code;
  if (code === "ECONNREFUSED") return {result: "refused", detail: code};
  return {result: "dropped", detail: code ?? err?.cause?.message ?? err?.message ?? String(error)};
}

/** The JSON body of a successful call, or throws with the status and body. */
export async function call(baseUrl: string, auth: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {Authorization: auth, "content-type": "application/json"},
    body: body === undefined ? undefined : JSON.stringify(body)
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

export async function tenantAuth(tenant: string) {
  return `Bearer ${await token({tenant, sub: "loader", roles: ["user", "admin"], expiresIn: 3600})}`;
}

/**
 * Posts single readings (unique recordedAt each) from `workers` concurrent loops until `until()`
 * says stop, each request bounded by `timeoutMs`. Records every outcome: a status, or how the
 * request ended without one (see NoResponse).
 */
export async function ingestContinuously(options: {
  baseUrl: string;
  auth: string;
  deviceId: string;
  workers: number;
  timeoutMs: number;
  until: () => boolean;
  start: number;
}) {
  const outcomes: Outcome[] = [];
  let sequence = 0;
  const loop = async () => {
    while (!options.until()) {
      const recordedAt = new Date(options.start - 86_400_000 + sequence++ * 1_000).toISOString();
      const began = Date.now();
      try {
        const res = await fetch(`${options.baseUrl}/api/v1/devices/${options.deviceId}/readings`, {
          method: "POST",
          headers: {Authorization: options.auth, "content-type": "application/json"},
          body: JSON.stringify({temperatureCelsius: 20 + (sequence % 10), recordedAt}),
          signal: AbortSignal.timeout(options.timeoutMs)
        });
        await res.arrayBuffer();
        outcomes.push({result: res.status, ms: Date.now() - began, retryAfter: res.headers.get("retry-after"), recordedAt, at: began});
      } catch (error) {
        outcomes.push({...noResponse(error), ms: Date.now() - began, recordedAt, at: began});
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  await Promise.all(Array.from({length: options.workers}, loop));
  return outcomes;
}

/** Outcomes per status or NoResponse kind, e.g. `{"201": 812, "refused": 40}`. */
export function countBy(outcomes: Outcome[]) {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o.result] = (counts[o.result] ?? 0) + 1;
  return counts;
}

/** The dropped requests with their error and when they were sent (ms after `since`), for a failure message. */
export function dropped(outcomes: Outcome[], since: number) {
  return outcomes.filter((o) => o.result === "dropped").map((o) => ({sentAfterMs: o.at - since, ms: o.ms, detail: o.detail}));
}
