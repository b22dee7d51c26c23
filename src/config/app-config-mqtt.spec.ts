import {mkdtempSync, writeFileSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {describe, expect, it} from "vitest";
import {EnvError, isLoopback, parseConfig} from "./app-config.js";

describe("parseConfig: MQTT listeners fail closed", () => {
  const dir = mkdtempSync(join(tmpdir(), "mqtt-config-"));
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  writeFileSync(cert, "not checked here");
  writeFileSync(key, "not checked here");

  it("in production, plaintext binds loopback unless MQTT_ALLOW_PLAINTEXT=true; elsewhere every interface", () => {
    expect(parseConfig({NODE_ENV: "production"}).mqtt).toMatchObject({port: 1883, host: "127.0.0.1", tls: null});
    expect(parseConfig({NODE_ENV: "production", MQTT_ALLOW_PLAINTEXT: "true"}).mqtt.host).toBe("0.0.0.0");
    expect(parseConfig({NODE_ENV: "production", MQTT_HOST: "127.0.0.2"}).mqtt.host).toBe("127.0.0.2");
    expect(parseConfig({NODE_ENV: "development"}).mqtt.host).toBe("0.0.0.0");
    expect(parseConfig({NODE_ENV: "test"}).mqtt.host).toBe("0.0.0.0");
  });

  it("refuses at boot a production plaintext listener named beyond loopback, unless allowed or plaintext is off", () => {
    expect(() => parseConfig({NODE_ENV: "production", MQTT_HOST: "0.0.0.0"})).toThrow(/MQTT_HOST=0.0.0.0 .*MQTT_ALLOW_PLAINTEXT/);
    expect(parseConfig({NODE_ENV: "production", MQTT_HOST: "0.0.0.0", MQTT_ALLOW_PLAINTEXT: "true"}).mqtt.host).toBe("0.0.0.0");
    const tlsOnly = parseConfig({
      NODE_ENV: "production",
      MQTT_HOST: "0.0.0.0",
      MQTT_PORT: "0",
      MQTTS_PORT: "8883",
      MQTT_TLS_CERT: cert,
      MQTT_TLS_KEY: key
    });
    expect(tlsOnly.mqtt).toMatchObject({port: 0, tls: {port: 8883, host: "0.0.0.0", certFile: cert, keyFile: key}});
  });

  it("TLS: MQTTS_PORT needs both PEM files, and the files need MQTTS_PORT", () => {
    expect(parseConfig({MQTTS_PORT: "8883", MQTT_TLS_CERT: cert, MQTT_TLS_KEY: key}).mqtt.tls).toEqual({
      port: 8883,
      host: "0.0.0.0",
      certFile: cert,
      keyFile: key
    });
    expect(() => parseConfig({MQTTS_PORT: "8883", MQTT_TLS_CERT: cert})).toThrow(/MQTT_TLS_KEY must name a PEM file/);
    expect(() => parseConfig({MQTTS_PORT: "8883", MQTT_TLS_CERT: join(dir, "missing.pem"), MQTT_TLS_KEY: key})).toThrow(
      /MQTT_TLS_CERT: no such file/
    );
    expect(() => parseConfig({MQTT_TLS_CERT: cert, MQTT_TLS_KEY: key})).toThrow(EnvError);
    expect(parseConfig({}).mqtt.tls).toBeNull();
  });

  it("bounds before authentication, and the MQTT process' metrics on loopback, by default", () => {
    expect(parseConfig({}).mqtt).toMatchObject({
      connectTimeoutMs: 5_000,
      maxConnections: 10_000,
      maxUnauthenticatedPerAddress: 20,
      metricsHost: "127.0.0.1"
    });
    expect(parseConfig({MQTT_METRICS_HOST: "0.0.0.0", MQTT_MAX_UNAUTHENTICATED_PER_ADDRESS: "0"}).mqtt).toMatchObject({
      metricsHost: "0.0.0.0",
      maxUnauthenticatedPerAddress: 0
    });
    expect(() => parseConfig({MQTT_CONNECT_TIMEOUT_MS: "0"})).toThrow(/MQTT_CONNECT_TIMEOUT_MS/);
  });

  it("knows loopback addresses", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "::1", "localhost"]) expect(isLoopback(host), host).toBe(true);
    for (const host of ["0.0.0.0", "::", "10.0.0.1", "127.0.0.1.example.com", "localhost.example.com"])
      expect(isLoopback(host), host).toBe(false);
  });
});
