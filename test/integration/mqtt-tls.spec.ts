import {execFileSync} from "node:child_process";
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {inject} from "@tsed/common";
import mqtt, {type MqttClient} from "mqtt";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {MqttReadingsIngest} from "../../src/modules/device-clients/mqtt-readings-ingest.js";
import {MqttServer} from "../../src/platform/mqtt/mqtt-server.js";
import {createDevice, provisionedBearer} from "../helpers/factories.js";
import {minute, TenantDb} from "../helpers/tenant-db.js";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";
import {newTenant} from "../helpers/tokens.js";

/**
 * A certificate authority and a server certificate it signs (for 127.0.0.1 and localhost), made
 * with the machine's openssl for this run only.
 */
function makeCertificates(dir: string) {
  const openssl = (...args: string[]) => execFileSync("openssl", args, {cwd: dir, stdio: "pipe"});
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=smart-thermo test CA", "-days", "1");
  openssl("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "1",
    "-extfile",
    "server.ext"
  );
  return {ca: readFileSync(join(dir, "ca.pem")), certFile: join(dir, "server.pem"), keyFile: join(dir, "server.key")};
}

/** MQTT over TLS (MQTTS_PORT): a device that verifies the server's certificate posts a reading, committed. */
describe("MQTT over TLS", () => {
  let api: Api;
  let server: MqttServer;
  let tlsPort: number;
  let dir: string;
  let ca: Buffer;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mqtt-tls-"));
    const certificates = makeCertificates(dir);
    ca = certificates.ca;
    api = await startTestServer();
    server = inject(MqttServer);
    tlsPort = await server.listen(inject(MqttReadingsIngest), {
      host: "127.0.0.1",
      tls: {port: 0, host: "127.0.0.1", certFile: certificates.certFile, keyFile: certificates.keyFile}
    });
  });
  afterAll(async () => {
    for (const client of clients) client.end(true);
    await server?.drain(2_000);
    await stopTestServer();
    rmSync(dir, {recursive: true, force: true});
  });

  it("takes a reading from a device that verified the server against its CA, and commits it; no plaintext listener", async () => {
    expect(server.tlsPort).toBe(tlsPort);
    expect(server.port).toBeUndefined();
    const tenant = newTenant("mqtls");
    const auth = await provisionedBearer(api, tenant);
    const deviceId = await createDevice(api, auth, "TLS-1");
    const key = (await api.post(`/api/v1/devices/${deviceId}/keys`).set(auth)).body as {id: string; key: string};

    const client = await mqtt.connectAsync(`mqtts://127.0.0.1:${tlsPort}`, {
      username: key.id,
      password: key.key,
      ca,
      rejectUnauthorized: true,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      protocolVersion: 4
    });
    clients.push(client);
    await client.publishAsync(`devices/${deviceId}/readings`, JSON.stringify({temperatureCelsius: 21.5, recordedAt: minute(1)}), {qos: 1});
    const db = await new TenantDb(tenant).connect();
    try {
      expect(await db.count("temperature_readings", "device_id = $1", [deviceId])).toBe(1);
    } finally {
      await db.close();
    }
  });

  it("a client that does not trust the server's CA does not connect", async () => {
    await expect(
      mqtt.connectAsync(`mqtts://127.0.0.1:${tlsPort}`, {
        username: "x",
        password: "y",
        rejectUnauthorized: true,
        reconnectPeriod: 0,
        connectTimeout: 3_000,
        protocolVersion: 4
      })
    ).rejects.toThrow(/self-signed certificate in certificate chain|unable to verify|certificate/i);
  });
});
