import http from "node:http";
import {inject, logger} from "@tsed/di";
import {startHeadless, startMqtt, stopOnSignal} from "./bootstrap.js";
import {loadConfig} from "./config/app-config.js";
import {MqttServer} from "./platform/mqtt/mqtt-server.js";
import {metricsRegistry} from "./platform/observability/metrics.js";

/**
 * `npm run mqtt`: an MQTT-only process (docs/api.md "Devices as clients"): no HTTP, no BullMQ workers,
 * the same configuration, providers and migrations as the API. Several run behind a TCP load
 * balancer; each keeps the acknowledge-after-commit rule. SIGTERM drains (MqttServer.drain) and
 * exits 0.
 */
try {
  const config = {...loadConfig(), runWorkers: false};
  if (config.mqtt.port === 0) throw new Error("MQTT_PORT=0 turns MQTT off: an MQTT-only process has nothing to serve");
  const platform = await startHeadless(config);
  const port = await startMqtt(config);
  // No HTTP API here, but Prometheus must still reach the process (connections, messages, ack latency).
  const metrics = config.mqtt.metricsPort
    ? http
        .createServer((req, res) => {
          if (req.url !== "/metrics") return void res.writeHead(404).end();
          void metricsRegistry.metrics().then((text) => res.writeHead(200, {"content-type": metricsRegistry.contentType}).end(text));
        })
        .listen(config.mqtt.metricsPort, config.mqtt.host)
    : undefined;
  logger().info({event: "MQTT_READY", pid: process.pid, port, metricsPort: config.mqtt.metricsPort || undefined});

  stopOnSignal(platform, "MQTT_STOPPING", async () => {
    await inject(MqttServer).drain(config.shutdownTimeoutMs);
    metrics?.close();
  });
} catch (error) {
  console.error("smart-thermo MQTT failed to start:", error);
  process.exit(1);
}
