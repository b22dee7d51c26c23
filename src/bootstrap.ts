import Http from "node:http";
import Net from "node:net";
import {$log, inject, logger, type PlatformBuilder} from "@tsed/common";
import "@tsed/logger/layouts/JsonLayout.js";
import {PlatformExpress} from "@tsed/platform-express";
import {buildConfiguration} from "../tsed.config.js";
import {type AppConfig, loadConfig} from "./config/app-config.js";
import {mqttHandler} from "./modules/index.js";
import {ensureDatabases} from "./platform/db/ensure-databases.js";
import {MqttServer} from "./platform/mqtt/mqtt-server.js";
import {Server} from "./server.js";

/** Boots the platform and installs graceful shutdown on SIGTERM/SIGINT. */
export async function startServer(overrides: Partial<AppConfig> = {}): Promise<PlatformBuilder> {
  const config = {...loadConfig(), ...overrides};
  if (config.nodeEnv === "production") useJsonLogs();
  await ensureDatabases([config.databaseUrl, config.analyticsDatabaseUrl]);
  const platform = await PlatformExpress.bootstrap(Server, buildConfiguration(config));
  await platform.listen();
  if (config.mqtt.port !== 0 || config.mqtt.tls) await startMqtt(config);
  if (config.auth.devIssuer) {
    logger().warn({
      event: "DEV_ISSUER_ON",
      message: `NODE_ENV=development: the development token issuer is on (${config.auth.issuer}); anyone with its key file mints tokens for any tenant and role`
    });
  }
  installGracefulShutdown(platform, config.shutdownTimeoutMs);
  return platform;
}

/**
 * The MQTT endpoint of devices (platform/mqtt), on MQTT_PORT and/or MQTTS_PORT, handing readings to
 * the feature that takes them; in development the next free port when MQTT_PORT is unset and 1883
 * is taken. Resolves with the plaintext port (the TLS one when plaintext is off).
 */
export async function startMqtt(config: AppConfig): Promise<number> {
  if (!mqttHandler) throw new Error("No feature takes MQTT messages");
  const server = inject(MqttServer);
  const port = await server.listen(inject(mqttHandler), {
    port: config.mqtt.port === 0 ? undefined : config.mqtt.port,
    host: config.mqtt.host,
    nextFreePort: config.mqtt.nextFreePort,
    tls: config.mqtt.tls ?? undefined
  });
  if (config.nodeEnv === "development") {
    const urls = [server.port && `mqtt://localhost:${server.port}`, server.tlsPort && `mqtts://localhost:${server.tlsPort}`].filter(
      Boolean
    );
    console.log(`[mqtt] devices connect to ${urls.join(" and ")} (username: key id, password: key)`);
  }
  return port;
}

/**
 * The application without HTTP, for the worker and the CLIs: the same providers, ORMs and
 * migrations as the API, no routes and no listening socket.
 */
export async function startHeadless(config: AppConfig, settings: Partial<TsED.Configuration> = {}): Promise<PlatformBuilder> {
  await ensureDatabases([config.databaseUrl, config.analyticsDatabaseUrl]);
  const platform = await PlatformExpress.bootstrap(Server, {
    ...buildConfiguration(config),
    httpPort: false,
    httpsPort: false,
    mount: {},
    swagger: [],
    ...settings
  });
  await platform.listen(false);
  return platform;
}

/**
 * For a headless process (worker, MQTT-only): on the first SIGTERM or SIGINT, logs `event`, runs
 * `drain` (what the process serves stops and finishes), stops the platform (ORMs, Redis, BullMQ
 * workers) and the logger, and exits 0.
 */
export function stopOnSignal(platform: PlatformBuilder, event: string, drain: () => Promise<void> = async () => {}): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger().info({event, signal});
    await drain();
    await platform.stop();
    await logger().shutdown?.();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}

/** Production logs are one JSON object per line (stdout below warn, stderr from warn up). */
export function useJsonLogs() {
  $log.appenders.set("stdout", {type: "stdout", levels: ["debug", "info"], layout: {type: "json"}});
  $log.appenders.set("stderr", {type: "stderr", levels: ["trace", "warn", "error", "fatal"], layout: {type: "json"}});
}

/**
 * SIGTERM: stop accepting connections, let in-flight requests finish (bounded) and, at the same
 * time, drain MQTT (stop accepting, commit and acknowledge what it holds, close: MqttServer.drain),
 * then close the ORMs, Redis and BullMQ workers (Ts.ED's $onDestroy hooks) and exit 0.
 * `platform.stop()` alone would destroy the providers before the servers stop, failing requests
 * and messages still in flight.
 */
export function installGracefulShutdown(platform: PlatformBuilder, timeoutMs: number) {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger().info({event: "SHUTDOWN_STARTED", signal});
    const server = inject<Http.Server>(Http.Server);
    // Stop listening only: http.Server#close would also destroy idle keep-alive connections at
    // once, resetting a request a client is sending on one at that moment.
    const closed = server ? new Promise<void>((resolve) => Net.Server.prototype.close.call(server, () => resolve())) : Promise.resolve();
    // Every response from now on closes its connection; one still idle after a grace closes too.
    server?.on("request", (_req, res) => res.setHeader("Connection", "close"));
    const idle = setTimeout(() => server?.closeIdleConnections(), 1_000);
    const timer = setTimeout(() => server?.closeAllConnections(), timeoutMs);
    await Promise.all([closed, inject(MqttServer).drain(timeoutMs)]);
    clearTimeout(idle);
    clearTimeout(timer);
    await platform.stop();
    logger().info({event: "SHUTDOWN_COMPLETE"});
    await logger().shutdown?.();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}
