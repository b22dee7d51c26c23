import {readFileSync} from "node:fs";
import net from "node:net";
import tls from "node:tls";
import {Inject, Injectable, Logger} from "@tsed/common";
import {
  Aedes,
  type AedesPublishPacket,
  type AuthenticateError,
  type Client,
  type ConnectPacket,
  type PublishPacket,
  type Subscription
} from "aedes";
import {AppConfig} from "../../config/app-config.js";
import type {DeviceIdentity} from "../device-auth/device-key-verifier.js";
import {DeviceKeyVerifier} from "../device-auth/device-key-verifier.js";
import {mqttAckLatency, mqttConnections, mqttConnectionsRefused, mqttMessages} from "../observability/metrics.js";
import {type AdmissionTicket, MqttAdmission} from "./mqtt-admission.js";
import {MqttFrameGuard, type MqttFrameRefusal} from "./mqtt-frame-guard.js";

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
  /** The plaintext listener's port (0: a free one); undefined: no plaintext listener. */
  port?: number;
  host: string;
  /** When the port is taken, take the next free one (development only). */
  nextFreePort?: boolean;
  /** A TLS listener beside it (MQTTS_PORT): certificate and key as PEM files. */
  tls?: {port: number; host: string; certFile: string; keyFile: string};
}

/**
 * Until its CONNACK a connection may send packets of this size at most: a CONNECT holds a client
 * id, a key id and a key (and perhaps a will, dropped), a few hundred bytes.
 */
export const MAX_UNAUTHENTICATED_PACKET_BYTES = 4_096;
/** What a PUBLISH holds beside its payload: the topic's length prefix, the longest topic MQTT allows, a packet id. */
const PUBLISH_OVERHEAD_BYTES = 2 + 65_535 + 2;

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
 *   readings are never routed to anyone and retained messages are never stored. Delivery
 *   (`authorizeForward`) lets a device receive that topic and nothing else, whatever aedes routes.
 * - Sessions: no session outlives its connection. A device asking `clean=false` is connected as a
 *   clean session (CONNACK sessionPresent=0, as from a broker that has lost its state), so nothing
 *   is queued for an absent device and no subscription is stored. aedes 1.x stores every topic of
 *   a SUBSCRIBE for a persistent session, refused ones included, and replays what they matched on
 *   reconnect (docs/aedes-persistent-subscribe.md): a persistent session would leak other tenants'
 *   messages and grow without bound while its device is away. A device's unacknowledged readings
 *   are its own state: it resends them after reconnecting, and a redelivery is a duplicate.
 *   Wills are dropped at CONNECT (a device publishes readings, nothing on its behalf).
 * - Bounds before authentication (MqttFrameGuard, MqttAdmission): a packet announcing more than
 *   4 kB before CONNACK, or more than BODY_LIMIT plus a topic after, closes the connection before
 *   aedes buffers it; CONNECT within MQTT_CONNECT_TIMEOUT_MS; MQTT_MAX_CONNECTIONS; at most
 *   MQTT_MAX_UNAUTHENTICATED_PER_ADDRESS connections of one address not yet accepted.
 * - TLS (MQTTS_PORT) beside or instead of plaintext; in production plaintext binds loopback
 *   unless MQTT_ALLOW_PLAINTEXT=true (AppConfig).
 * - `drain()` (SIGTERM): stop accepting connections, stop reading from the open ones, commit what is
 *   held and acknowledge it, then close the connections once their acknowledgements are written.
 */
@Injectable()
export class MqttServer {
  @Inject()
  private verifier!: DeviceKeyVerifier;

  @Inject()
  private logger!: Logger;

  @Inject()
  private config!: AppConfig;

  private broker?: Aedes;
  private readonly servers: net.Server[] = [];
  private admission?: MqttAdmission;
  private readonly tickets = new WeakMap<MqttFrameGuard, AdmissionTicket>();
  private handler?: MqttPublishHandler;
  private readonly identities = new WeakMap<Client, DeviceIdentity>();
  /** Open connections by key id, to close them when their key is revoked. */
  private readonly byKey = new Map<string, Set<Client>>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopRevocations?: () => void;
  private draining = false;

  /** The ports it listens on (after `listen`): plaintext, TLS. */
  port?: number;
  tlsPort?: number;

  get connections(): number {
    return this.broker?.connectedClients ?? 0;
  }

  /** TCP connections held, authenticated or not (what MQTT_MAX_CONNECTIONS bounds). */
  get openConnections(): number {
    return this.admission?.connections ?? 0;
  }

  /** Serves MQTT on the plaintext port, the TLS port or both; resolves with the plaintext port (else the TLS one). */
  async listen(handler: MqttPublishHandler, options: MqttListenOptions): Promise<number> {
    this.handler = handler;
    const {mqtt} = this.config;
    const broker = new Aedes({
      // Never a retained message, nor QoS 1/2 routing state per device beyond its errors topic.
      preConnect: (_client, packet, callback) => {
        forgetSessionAndWill(packet);
        callback(null, !this.draining);
      },
      authenticate: (client, username, password, callback) => this.authenticate(client, username, password, callback),
      authorizePublish: (client, packet, callback) => this.authorizePublish(client, packet, callback),
      authorizeSubscribe: (client, subscription, callback) => this.authorizeSubscribe(client, subscription, callback),
      authorizeForward: (client, packet) => this.authorizeForward(client, packet),
      connectTimeout: mqtt.connectTimeoutMs
    });
    await broker.listen();
    this.broker = broker;
    this.admission = new MqttAdmission(mqtt.maxConnections, mqtt.maxUnauthenticatedPerAddress);
    broker.on("connackSent", (connack, client) => {
      if (connack.returnCode !== 0) return;
      const guard = client.conn as unknown as MqttFrameGuard;
      guard.markAuthenticated();
      this.tickets.get(guard)?.authenticated();
    });
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

    if (options.port !== undefined) {
      const server = net.createServer((socket) => this.accept(socket));
      this.servers.push(server);
      this.port = await bind(server, options.port, options.host, options.nextFreePort ?? false, this.logger);
      this.logger.info({event: "MQTT_LISTENING", host: options.host, port: this.port});
    }
    if (options.tls) {
      const secureContext = tls.createSecureContext({cert: readFileSync(options.tls.certFile), key: readFileSync(options.tls.keyFile)});
      const server = net.createServer((socket) => this.accept(socket, secureContext));
      this.servers.push(server);
      this.tlsPort = await bind(server, options.tls.port, options.tls.host, false, this.logger);
      this.logger.info({event: "MQTT_LISTENING", host: options.tls.host, port: this.tlsPort, tls: true});
    }
    const port = this.port ?? this.tlsPort;
    if (port === undefined) throw new Error("MqttServer.listen: neither a plaintext nor a TLS port");
    return port;
  }

  /**
   * A new TCP connection: admitted within the bounds (or closed at once), TLS when it came to the
   * TLS port (the handshake runs under aedes' connect timeout too), then handed to aedes behind a
   * MqttFrameGuard.
   */
  private accept(socket: net.Socket, secureContext?: tls.SecureContext): void {
    const ticket = this.admission!.admit(socket.remoteAddress ?? "unknown");
    if (typeof ticket === "string") {
      mqttConnectionsRefused.inc({reason: ticket});
      socket.destroy();
      return;
    }
    socket.once("close", () => ticket.release());
    // Small packets, acknowledged one by one: never wait for Nagle's algorithm.
    socket.setNoDelay(true);
    let stream: net.Socket = socket;
    if (secureContext) {
      socket.on("error", () => undefined); // reported (and handled) through the TLS socket
      stream = new tls.TLSSocket(socket, {isServer: true, secureContext});
    }
    const {mqtt} = this.config;
    const guard = new MqttFrameGuard(
      stream,
      {unauthenticatedBytes: MAX_UNAUTHENTICATED_PACKET_BYTES, authenticatedBytes: mqtt.maxPayloadBytes + PUBLISH_OVERHEAD_BYTES},
      (refusal) => this.refused(socket, refusal)
    );
    this.tickets.set(guard, ticket);
    this.broker!.handle(guard);
  }

  private refused(socket: net.Socket, refusal: MqttFrameRefusal): void {
    mqttConnectionsRefused.inc({reason: "frame_too_large"});
    this.logger.warn({
      event: "MQTT_FRAME_TOO_LARGE",
      remoteAddress: socket.remoteAddress,
      ...refusal,
      note: "connection closed before the packet was buffered"
    });
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
    const stopped = Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
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
    await withDeadline(Promise.all(clients.map((client) => endGracefully(client.conn))), deadline);
    this.stopRevocations?.();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await withDeadline(stopped, deadline);
    this.logger.info({event: "MQTT_STOPPED"});
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

  /**
   * Every delivery to a device, live or queued: only its own errors topic. Subscriptions are
   * refused beyond it already; this holds even where aedes routes what a subscription check refused
   * (docs/aedes-persistent-subscribe.md).
   */
  private authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    const identity = this.identities.get(client);
    return identity && packet.topic === errorsTopic(identity.deviceId) ? packet : null;
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

/** Listens on `port` (0: a free one); with `nextFreePort`, on the next free one when it is taken. */
function bind(server: net.Server, port: number, host: string, nextFreePort: boolean, logger: Logger): Promise<number> {
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
      logger.warn({
        event: "MQTT_PORT_TAKEN",
        requested: port,
        port: bound,
        note: `port ${port} is taken (another MQTT broker?): serving MQTT on ${bound} in development; set MQTT_PORT to choose`
      });
    }
    return bound;
  });
}

/**
 * preConnect, before aedes reads the CONNECT's session flag and will: every session is clean and
 * no will is kept (see MqttServer: a persistent session in aedes 1.x leaks refused subscriptions).
 */
function forgetSessionAndWill(packet: ConnectPacket): void {
  packet.clean = true;
  delete packet.will;
}

function authError(message: string, returnCode: 3 | 4): AuthenticateError {
  return Object.assign(new Error(message), {returnCode});
}

/** Half-closes after the buffered writes are sent, and resolves when the socket is closed (destroys it after 2 s). */
function endGracefully(socket: NodeJS.ReadWriteStream & {destroyed: boolean; destroy(): void}): Promise<void> {
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
