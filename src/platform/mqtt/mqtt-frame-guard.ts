import {Duplex} from "node:stream";

/** The largest packet a connection may announce, before and after its CONNACK. */
export interface MqttFrameLimits {
  /** Until the CONNACK: a CONNECT (and anything pipelined behind it) of a few kB at most. */
  unauthenticatedBytes: number;
  /** Afterwards: BODY_LIMIT plus the room a PUBLISH needs for its topic and packet id. */
  authenticatedBytes: number;
}

/** Why a connection was closed: the packet that announced too much. */
export interface MqttFrameRefusal {
  /** MQTT control packet type (1 CONNECT, 3 PUBLISH, …); 0 when the length itself was malformed. */
  packetType: number;
  /** The remaining length the fixed header announced, at least (-1: not a valid variable byte integer). */
  declaredBytes: number;
  limitBytes: number;
  authenticated: boolean;
  /** Bytes of the connection this guard had seen when it refused (headers included). */
  bytesRead: number;
}

/** MQTT's remaining length is a variable byte integer of at most 4 bytes (268,435,455). */
const MAX_LENGTH_BYTES = 4;

/**
 * Stands between a client's socket and aedes (`broker.handle(guard)`), reads each MQTT fixed header
 * as it streams past and closes the connection as soon as one announces more than the limit, before
 * any byte of that packet reaches aedes. Hand-written because aedes' parser (mqtt-packet) keeps the
 * bytes of a packet until its whole declared length has arrived, whatever that length, and offers
 * no bound: a CONNECT header announcing 250 MiB followed by filler grew the process by ~90 MB before
 * any credential was looked at (docs/aedes-persistent-subscribe.md has the measurements). Only
 * headers are parsed here; bodies pass through as they come, so what aedes buffers per connection is
 * at most one packet within the limit.
 *
 * Writes go straight to the socket (with its backpressure); the readable side follows the socket's
 * (paused when aedes stops reading, e.g. while it authenticates).
 */
export class MqttFrameGuard extends Duplex {
  /** Bytes of the current packet's body still to pass; the next byte after them is a header. */
  private bodyLeft = 0;
  /** Within a fixed header: its type byte has been read and `lengthBytes` bytes of its length. */
  private inHeader = false;
  private packetType = 0;
  private length = 0;
  private lengthBytes = 0;
  private authenticated = false;
  private refused = false;
  bytesRead = 0;

  constructor(
    readonly socket: Duplex,
    private readonly limits: MqttFrameLimits,
    private readonly onRefused: (refusal: MqttFrameRefusal) => void
  ) {
    super({allowHalfOpen: false});
    socket.on("data", (chunk: Buffer) => this.inspect(chunk));
    socket.on("end", () => this.push(null));
    socket.on("error", (error) => this.destroy(error));
    socket.on("close", () => this.destroy());
  }

  /** The CONNACK accepted the connection: packets may now be as large as a reading message. */
  markAuthenticated(): void {
    this.authenticated = true;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.socket.write(chunk)) callback();
    else this.socket.once("drain", () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }

  private inspect(chunk: Buffer): void {
    if (this.refused) return;
    this.bytesRead += chunk.length;
    const refusal = this.scan(chunk);
    if (refusal) {
      this.refused = true;
      this.onRefused(refusal);
      this.destroy();
      return;
    }
    if (!this.push(chunk)) this.socket.pause();
  }

  /** Follows the packet boundaries through `chunk`; the first header over the limit is a refusal. */
  private scan(chunk: Buffer): MqttFrameRefusal | undefined {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.bodyLeft > 0) {
        const skipped = Math.min(this.bodyLeft, chunk.length - offset);
        this.bodyLeft -= skipped;
        offset += skipped;
        continue;
      }
      const byte = chunk[offset++]!;
      if (!this.inHeader) {
        this.inHeader = true;
        this.packetType = byte >> 4;
        this.length = 0;
        this.lengthBytes = 0;
        continue;
      }
      this.length += (byte & 0x7f) * 128 ** this.lengthBytes;
      this.lengthBytes++;
      const limit = this.authenticated ? this.limits.authenticatedBytes : this.limits.unauthenticatedBytes;
      if (byte & 0x80) {
        if (this.lengthBytes === MAX_LENGTH_BYTES) return this.refusal(-1, limit);
        // Already over the limit with bytes to come: refuse without waiting for them.
        if (this.length > limit) return this.refusal(this.length, limit);
        continue;
      }
      if (this.length > limit) return this.refusal(this.length, limit);
      this.inHeader = false;
      this.bodyLeft = this.length;
    }
    return undefined;
  }

  private refusal(declaredBytes: number, limitBytes: number): MqttFrameRefusal {
    return {packetType: this.packetType, declaredBytes, limitBytes, authenticated: this.authenticated, bytesRead: this.bytesRead};
  }
}
