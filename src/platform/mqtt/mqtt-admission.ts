/** Why a connection was closed before aedes saw it. */
export type AdmissionRefusal = "max_connections" | "unauthenticated_per_address";

/** One admitted connection: counts as unauthenticated until `authenticated()`, and as open until `release()`. */
export interface AdmissionTicket {
  authenticated(): void;
  release(): void;
}

/**
 * How many MQTT connections this process holds (MQTT_MAX_CONNECTIONS, both listeners together) and
 * how many of one remote address are not yet past their CONNACK
 * (MQTT_MAX_UNAUTHENTICATED_PER_ADDRESS): what an address without a key can hold is bounded, while
 * a building of devices behind one NAT address still connects (each leaves the count once accepted).
 */
export class MqttAdmission {
  private open = 0;
  private readonly unauthenticated = new Map<string, number>();

  constructor(
    private readonly maxConnections: number,
    /** 0: no cap (behind a TCP load balancer that hides the devices' addresses). */
    private readonly maxUnauthenticatedPerAddress: number
  ) {}

  get connections(): number {
    return this.open;
  }

  admit(address: string): AdmissionTicket | AdmissionRefusal {
    if (this.open >= this.maxConnections) return "max_connections";
    const pending = this.unauthenticated.get(address) ?? 0;
    if (this.maxUnauthenticatedPerAddress > 0 && pending >= this.maxUnauthenticatedPerAddress) return "unauthenticated_per_address";
    this.open++;
    this.unauthenticated.set(address, pending + 1);
    let authenticated = false;
    let released = false;
    const leaveUnauthenticated = () => {
      if (authenticated) return;
      authenticated = true;
      const left = (this.unauthenticated.get(address) ?? 1) - 1;
      if (left > 0) this.unauthenticated.set(address, left);
      else this.unauthenticated.delete(address);
    };
    return {
      authenticated: leaveUnauthenticated,
      release: () => {
        if (released) return;
        released = true;
        leaveUnauthenticated();
        this.open--;
      }
    };
  }
}
