import net from "node:net";
import {Inject, Injectable} from "@tsed/di";
import {Logger} from "@tsed/logger";
import {Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription} from "aedes";
import type {DeviceIdentity} from "../device-auth/device-key-verifier.js";
import {DeviceKeyVerifier} from "../device-auth/device-key-verifier.js";
import {mqttAckLatency, mqttConnections, mqttMessages} from "../observability/metrics.js";

/** The topic a device publishes its readings to: its own, and no other. */
export const readingsTopic = (deviceId: string) => `devices/${deviceId}/readings`;
/** Where a device hears why a message of its was refused (the API's error shape); the only topic it may subscribe to. */
export const errorsTopic = (deviceId: string) => `devices/${deviceId}/errors`;

/** The API's error shape, as published on a device's errors topic. */
export interface MqttErrorReport {
  status: number;
  name: string;
  message: string;
  errors: Record<string, unknown>[];
  retryAfterSeconds?: number;
}

/**
 * What the server hands a device's messages to (the feature that writes readings). The server
 * knows devices, keys and topics; the handler knows readings.
 */
export interface MqttPublishHandler {
  /**
   * A device's PUBLISH to its readings topic. Resolves once the message is dealt with — its
   * readings committed (undefined), or refused for what it holds (a report, which the server
   * publishes on the device's errors topic) — and only then is the message acknowledged. Rejects
   * when it is not known to be committed (Postgres unavailable): the connection is closed without
   * PUBACK, and the device sends the message again once it has reconnected.
   */
  onReadings(identity: DeviceIdentity, payload: Buffer): Promise<MqttErrorReport | undefined>;
  /** Shutdown: commit what is held now; resolves when every message handed over is dealt with. */
  flush(): Promise<void>;
}

export interface MqttListenOptions {
  port: number;
  host: string;
  /** When the port is taken, take the next free one (development only). */
  nextFreePort?: boolean;
}

/** How many ports above a taken one `nextFreePort` tries. */
const PORT_TRIES = 20;

/**
 * The MQTT endpoint of devices (docs/api.md "Devices as clients"), an aedes broker on a TCP port, in
 * the API process or alone (`npm run mqtt`):
 *
 * - CONNECT: username = the key id, password = the key (DeviceKeyVerifier); anything else is
 *   refused with "bad user name or password" (Postgres unreachable: "server unavailable"). A
 *   device's client id is namespaced by its device id, so no device can take over another's
 *   session by choosing its client id.
 * - PUBLISH: only to `devices/<its device id>/readings`; any other topic closes the connection
 *   (MQTT 3.1.1 has no negative PUBACK). A revoked key's connections are closed as soon as the
 *   revocation feed reports it, and every message re-checks its key (from memory).
 * - QoS 1 is acknowledged only after commit. aedes (lib/handlers/publish.js) writes the PUBACK of a
 *   QoS 1 PUBLISH right after the `authorizePublish` hook calls back, before it even routes the
 *   message (and the PUBREC of QoS 2 after storing it): so this server calls back only when the
 *   handler has committed the readings or refused them. A test reads Postgres at the moment each
 *   PUBACK arrives.
 * - SUBSCRIBE: only to the device's own errors topic (others get a failure return code), so
 *   readings are never routed to anyone and retained messages are never stored.
 * - `drain()` (SIGTERM): stop accepting connections, stop reading from the open ones, commit what is
 *   held and acknowledge it, then close the connections once their acknowledgements are written.
 */
@Injectable()
export class MqttServer {
  @Inject()
  private verifier!: DeviceKeyVerifier;

  @Inject()
  private logger!: Logger;

  private broker?: Aedes;
  private server?: net.Server;
  private handler?: MqttPublishHandler;
  private readonly identities = new WeakMap<Client, DeviceIdentity>();
  /** Open connections by key id, to close them when their key is revoked. */
  private readonly byKey = new Map<string, Set<Client>>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopRevocations?: () => void;
  private draining = false;

  /** The port it listens on (after `listen`). */
  port?: number;

  get connections(): number {
    return this.broker?.connectedClients ?? 0;
  }

  async listen(handler: MqttPublishHandler, options: MqttListenOptions): Promise<number> {
    this.handler = handler;
    const broker = new Aedes({
      // Never a retained message, nor QoS 1/2 routing state per device beyond its errors topic.
      preConnect: (_client, _packet, callback) => callback(null, !this.draining),
      authenticate: (client, username, password, callback) => this.authenticate(client, username, password, callback),
      authorizePublish: (client, packet, callback) => this.authorizePublish(client, packet, callback),
      authorizeSubscribe: (client, subscription, callback) => this.authorizeSubscribe(client, subscription, callback)
    });
    await broker.listen();
    this.broker = broker;
    broker.on("clientReady", (client) => {
      const identity = this.identities.get(client);
      if (!identity) return;
      let clients = this.byKey.get(identity.keyId);
      if (!clients) this.byKey.set(identity.keyId, (clients = new Set()));
      clients.add(client);
      mqttConnections.inc();
    });
    broker.on("clientDisconnect", (client) => {
      const identity = this.identities.get(client);
      const clients = identity && this.byKey.get(identity.keyId);
      if (!identity || !clients?.delete(client)) return;
      if (clients.size === 0) this.byKey.delete(identity.keyId);
      mqttConnections.dec();
    });
    this.stopRevocations = this.verifier.onRevoked((keyIds) => {
      for (const keyId of keyIds) for (const client of this.byKey.get(keyId) ?? []) client.close();
    });

    this.server = net.createServer((socket) => {
      // Small packets, acknowledged one by one: never wait for Nagle's algorithm.
      socket.setNoDelay(true);
      broker.handle(socket);
    });
    this.port = await this.bind(options);
    this.logger.info({event: "MQTT_LISTENING", host: options.host, port: this.port});
    return this.port;
  }

  /**
   * Graceful stop: refuses new connections and stops reading from open ones, has the handler commit
   * what it holds, waits (at most `timeoutMs`) until every message taken is acknowledged, then
   * closes each connection after its last acknowledgement has been written. Messages a device
   * sent after that were not taken: unacknowledged, the device resends them after reconnecting.
   */
  async drain(timeoutMs: number): Promise<void> {
    const broker = this.broker;
    if (!broker || this.draining) return;
    this.draining = true;
    const deadline = Date.now() + timeoutMs;
    const stopped = new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    const clients = Object.values((broker as unknown as {clients: Record<string, Client & {pause(): void}>}).clients);
    for (const client of clients) client.pause();
    this.logger.info({event: "MQTT_DRAINING", connections: clients.length, inFlight: this.inFlight.size});
    await withDeadline(
      (async () => {
        await this.handler?.flush();
        while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      })(),
      deadline
    );
    // The acknowledgements are in the sockets' buffers: end() sends them before the FIN.
    await withDeadline(Promise.all(clients.map((client) => endGracefully(client.conn as net.Socket))), deadline);
    this.stopRevocations?.();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await withDeadline(stopped, deadline);
    this.logger.info({event: "MQTT_STOPPED"});
  }

  private bind({port, host, nextFreePort}: MqttListenOptions): Promise<number> {
    const server = this.server!;
    const attempt = (candidate: number, triesLeft: number): Promise<number> =>
      new Promise<number>((resolve, reject) => {
        const onError = (error: NodeJS.ErrnoException) => {
          server.off("listening", onListening);
          reject(error);
        };
        const onListening = () => {
          server.off("error", onError);
          resolve((server.address() as net.AddressInfo).port);
        };
        server.once("error", onError);
        server.once("listening", onListening);
        server.listen(candidate, host);
      }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "EADDRINUSE" || !nextFreePort || triesLeft === 0 || candidate >= 65535) throw error;
        return attempt(candidate + 1, triesLeft - 1);
      });
    return attempt(port, PORT_TRIES).then((bound) => {
      if (bound !== port && port !== 0) {
        this.logger.warn({
          event: "MQTT_PORT_TAKEN",
          requested: port,
          port: bound,
          note: `port ${port} is taken (another MQTT broker?): serving MQTT on ${bound} in development; set MQTT_PORT to choose`
        });
      }
      return bound;
    });
  }

  private authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    callback: (error: AuthenticateError | null, success: boolean | null) => void
  ): void {
    if (!username || !password) return callback(authError("bad user name or password", 4), false);
    this.verifier.verify(password.toString("utf8"), username).then(
      (identity) => {
        if (!identity) return callback(authError("bad user name or password", 4), false);
        this.identities.set(client, identity);
        // aedes keys sessions by client id: namespaced, a device can only ever take over its own.
        (client as {id: string}).id = `${identity.deviceId}/${client.id}`;
        callback(null, true);
      },
      (error: unknown) => {
        this.logger.warn({event: "MQTT_AUTH_UNAVAILABLE", error_message: (error as Error)?.message});
        callback(authError("server unavailable", 3), false);
      }
    );
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void): void {
    if (!client) return callback(null); // the server's own publishes (error reports)
    const identity = this.identities.get(client);
    if (!identity || packet.topic !== readingsTopic(identity.deviceId) || packet === (client as {will?: unknown}).will) {
      mqttMessages.inc({outcome: "dropped"});
      return callback(new Error(`not authorized to publish to ${String(packet.topic).slice(0, 100)}`));
    }
    if (this.draining) {
      mqttMessages.inc({outcome: "dropped"});
      return callback(new Error("shutting down"));
    }
    packet.retain = false;
    const received = performance.now();
    const task = this.verifier
      .isActive(identity.keyId)
      .then((active) => {
        if (!active) throw new Error("device key revoked");
        return this.handler!.onReadings(identity, packet.payload as Buffer);
      })
      .then(
        (report) => {
          if (report) {
            mqttMessages.inc({outcome: "rejected"});
            this.broker?.publish(
              {
                cmd: "publish",
                topic: errorsTopic(identity.deviceId),
                payload: Buffer.from(JSON.stringify(report)),
                qos: 1,
                retain: false,
                dup: false
              },
              () => undefined
            );
          } else mqttMessages.inc({outcome: "committed"});
          mqttAckLatency.observe((performance.now() - received) / 1000);
          // Now, and only now, aedes writes the PUBACK (QoS 1) or stores and PUBRECs (QoS 2).
          callback(null);
        },
        (error: unknown) => {
          mqttMessages.inc({outcome: "dropped"});
          this.logger.warn({
            event: "MQTT_MESSAGE_NOT_COMMITTED",
            deviceId: identity.deviceId,
            error_message: (error as Error)?.message,
            note: "connection closed unacknowledged: the device resends"
          });
          callback(error as Error);
        }
      );
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task));
  }

  private authorizeSubscribe(
    client: Client,
    subscription: Subscription,
    callback: (error: Error | null, subscription?: Subscription | null) => void
  ): void {
    const identity = this.identities.get(client);
    if (!identity || subscription.topic !== errorsTopic(identity.deviceId)) return callback(null, null); // SUBACK failure for this topic
    callback(null, {...subscription, qos: Math.min(subscription.qos, 1) as 0 | 1});
  }
}

function authError(message: string, returnCode: 3 | 4): AuthenticateError {
  return Object.assign(new Error(message), {returnCode});
}

/** Half-closes after the buffered writes are sent, and resolves when the socket is closed (destroys it after 2 s). */
function endGracefully(socket: net.Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => socket.destroy(), 2_000);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.end();
  });
}

function withDeadline(task: Promise<unknown>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    task.then(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    })
  ]).finally(() => clearTimeout(timer));
}
