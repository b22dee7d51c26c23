import {type ChildProcess, spawn} from "node:child_process";
import net from "node:net";
import {networkInterfaces} from "node:os";
import {afterAll, describe, expect, it} from "vitest";
import {until} from "../helpers/wait.js";

const ROOT = new URL("../..", import.meta.url).pathname;
const TOKEN = "metrics-token-of-this-spec";

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const {port} = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** An address of this machine that other machines reach (not loopback), if it has one. */
function externalAddress(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((address) => address && address.family === "IPv4" && !address.internal)?.address;
}

/**
 * `npm run mqtt` (src/mqtt.ts) as its own process: its Prometheus endpoint (MQTT_METRICS_PORT)
 * answers on loopback only by default, wants METRICS_TOKEN when it is set, and is not served at all
 * in production without one.
 */
describe("the MQTT-only process' metrics", () => {
  const children: ChildProcess[] = [];

  /** Starts src/mqtt.ts with the spec's environment plus `env`; resolves once it logged MQTT_READY, with its output so far. */
  const startMqttProcess = async (env: Record<string, string>) => {
    const child = spawn(process.execPath, ["--import", "@swc-node/register/esm-register", "src/mqtt.ts"], {
      cwd: ROOT,
      env: {...process.env, LOG_LEVEL: "info", MQTT_PORT: String(await freePort()), MQTT_HOST: "127.0.0.1", ...env},
      stdio: ["ignore", "pipe", "pipe"]
    });
    children.push(child);
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    await until(
      "the MQTT process to be ready",
      async () => {
        if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${output}`);
        return output.includes("MQTT_READY");
      },
      60_000
    );
    return () => output;
  };
  const get = (url: string, headers: Record<string, string> = {}) =>
    fetch(url, {headers}).then(
      (res) => res.status,
      (error: Error & {cause?: {code?: string}}) => error.cause?.code ?? error.message
    );

  afterAll(async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) =>
            child.exitCode !== null ? resolve() : (child.once("exit", () => resolve()), child.kill("SIGTERM"))
          )
      )
    );
  });

  it("binds loopback by default and serves /metrics only with METRICS_TOKEN when it is set", {timeout: 90_000}, async () => {
    const metricsPort = await freePort();
    await startMqttProcess({MQTT_METRICS_PORT: String(metricsPort), METRICS_TOKEN: TOKEN});
    const url = `http://127.0.0.1:${metricsPort}/metrics`;
    expect(await get(url)).toBe(401);
    expect(await get(url, {authorization: "Bearer not-the-token-of-this-spec"})).toBe(401);
    expect(await get(url, {authorization: `Bearer ${TOKEN}`})).toBe(200);
    const external = externalAddress();
    if (external) expect(await get(`http://${external}:${metricsPort}/metrics`, {authorization: `Bearer ${TOKEN}`})).toBe("ECONNREFUSED");
  });

  it("in production without METRICS_TOKEN serves no /metrics at all, and says so", {timeout: 90_000}, async () => {
    const metricsPort = await freePort();
    const output = await startMqttProcess({NODE_ENV: "production", MQTT_METRICS_PORT: String(metricsPort), METRICS_TOKEN: ""});
    expect(await get(`http://127.0.0.1:${metricsPort}/metrics`)).toBe("ECONNREFUSED");
    expect(output()).toContain("MQTT_METRICS_OFF");
  });
});
