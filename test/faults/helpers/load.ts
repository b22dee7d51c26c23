import {token} from "../../helpers/tokens.js";

export interface Outcome {
  status: number;
  ms: number;
  retryAfter?: string | null;
  recordedAt: string;
  at: number;
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
 * says stop, each request bounded by `timeoutMs`. Records every outcome; status 0 = no response.
 */
export async function ingestContinuously(options: {baseUrl: string; auth: string; deviceId: string; workers: number; timeoutMs: number; until: () => boolean; start: number}) {
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
        outcomes.push({status: res.status, ms: Date.now() - began, retryAfter: res.headers.get("retry-after"), recordedAt, at: began});
      } catch {
        outcomes.push({status: 0, ms: Date.now() - began, recordedAt, at: began});
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  await Promise.all(Array.from({length: options.workers}, loop));
  return outcomes;
}

export function countBy(outcomes: Outcome[]) {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o.status] = (counts[o.status] ?? 0) + 1;
  return counts;
}
