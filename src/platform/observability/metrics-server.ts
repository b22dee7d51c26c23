import http from "node:http";
import {toHttpError} from "../../common/error-mapping.js";
import {UnauthorizedError} from "../../common/errors.js";
import type {AppConfig} from "../../config/app-config.js";
import {mayReadMetrics, metricsServed} from "./metrics-access.js";
import {metricsRegistry} from "./metrics.js";

/**
 * `GET /metrics` on a port of its own, for a process without the HTTP API (`npm run mqtt`), by the
 * rule of metrics-access.ts, on `host` (MQTT_METRICS_HOST, loopback unless told otherwise). Resolves
 * undefined, listening nowhere, when the rule serves no metrics (production without METRICS_TOKEN).
 */
export async function serveMetrics(
  config: Pick<AppConfig, "nodeEnv" | "metricsToken">,
  port: number,
  host: string
): Promise<http.Server | undefined> {
  if (!metricsServed(config)) return undefined;
  const server = http.createServer((req, res) => {
    if (req.url !== "/metrics" || req.method !== "GET") return void res.writeHead(404).end();
    if (!mayReadMetrics(config, req.headers.authorization)) {
      return void res
        .writeHead(401, {"content-type": "application/json", "www-authenticate": 'Bearer realm="metrics"'})
        .end(JSON.stringify(toHttpError(new UnauthorizedError("GET /metrics needs the metrics token"))));
    }
    void metricsRegistry.metrics().then((text) => res.writeHead(200, {"content-type": metricsRegistry.contentType}).end(text));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}
