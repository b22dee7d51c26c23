/**
 * How many operations of a kind each tenant has running in this process, under a limit: the
 * bookkeeping of HeavyReadMiddleware and ExportSlotMiddleware. Per process, since what they
 * protect (a connection pool) is per process.
 */
export class TenantSlots {
  private readonly running = new Map<string, number>();

  constructor(private readonly limit: () => number) {}

  /** Takes one of the tenant's slots: the function that gives it back (once, however often called), or undefined when all are taken. */
  tryTake(tenantId: string): (() => void) | undefined {
    const running = this.running.get(tenantId) ?? 0;
    if (running >= this.limit()) return undefined;
    this.running.set(tenantId, running + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.running.get(tenantId) ?? 1) - 1;
      if (left > 0) this.running.set(tenantId, left);
      else this.running.delete(tenantId);
    };
  }

  /** Slots the tenant holds now. */
  held(tenantId: string): number {
    return this.running.get(tenantId) ?? 0;
  }
}
