import {inject, logger} from "@tsed/common";
import {startHeadless, startMqtt, stopOnSignal} from "./bootstrap.js";
import {loadConfig} from "./config/app-config.js";
import {MqttServer} from "./platform/mqtt/mqtt-server.js";
import {serveMetrics} from "./platform/observability/metrics-server.js";

/**
 * `npm run mqtt`: an MQTT-only process (docs/api.md "Devices as clients"): no HTTP, no BullMQ workers,
 * the same configuration, providers and migrations as the API. Several run behind a TCP load
 * balancer; each keeps the acknowledge-after-commit rule. SIGTERM drains (MqttServer.drain) and
 * exits 0.
 */
try {
  const config = {...loadConfig(), runWorkers: false};
  if (config.mqtt.port === 0 && !config.mqtt.tls)
    throw new Error("MQTT_PORT=0 and no MQTTS_PORT turn MQTT off: an MQTT-only process has nothing to serve");
  const platform = await startHeadless(config);
  const port = await startMqtt(config);
  // No HTTP API here, but Prometheus must still reach the process (connections, messages, ack latency).
  const metrics = config.mqtt.metricsPort ? await serveMetrics(config, config.mqtt.metricsPort, config.mqtt.metricsHost) : undefined;
  if (config.mqtt.metricsPort && !metrics) {
    logger().warn({event: "MQTT_METRICS_OFF", note: "production without METRICS_TOKEN: GET /metrics is not served (set METRICS_TOKEN)"});
  }
  logger().info({
    event: "MQTT_READY",
    pid: process.pid,
    port,
    tlsPort: config.mqtt.tls?.port,
    metricsPort: metrics ? config.mqtt.metricsPort : undefined
  });

  stopOnSignal(platform, "MQTT_STOPPING", async () => {
    await inject(MqttServer).drain(config.shutdownTimeoutMs);
    metrics?.close();
  });
} catch (error) {
  console.error("smart-thermo MQTT failed to start:", error);
  process.exit(1);
}
