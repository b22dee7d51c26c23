/**
 * A bounded buffer in front of a slow or failing sink, for work the caller must not wait for: `push`
 * returns at once, one `send` runs at a time with up to `batch` items, and beyond `max` waiting
 * items the oldest are dropped (counted in `dropped`). A failed send drops its items too: what it
 * carries is worth less late than the caller's time.
 */
export class BoundedPublisher<T> {
  /** Items dropped so far (buffer full, or their send failed). */
  dropped = 0;
  private queue: T[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly send: (items: T[]) => Promise<void>,
    private readonly options: {max: number; batch: number; onError?: (error: Error, lost: number) => void}
  ) {}

  /** Items waiting (not counting the send in flight). */
  get waiting(): number {
    return this.queue.length;
  }

  push(items: readonly T[]): void {
    for (const item of items) this.queue.push(item);
    const over = this.queue.length - this.options.max;
    if (over > 0) {
      this.queue.splice(0, over);
      this.dropped += over;
    }
    this.flushing ??= this.flush().finally(() => (this.flushing = undefined));
  }

  /** Resolves once everything pushed so far was sent (or dropped). */
  async idle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flush(): Promise<void> {
    while (this.queue.length) {
      const items = this.queue.splice(0, this.options.batch);
      try {
        await this.send(items);
      } catch (error) {
        this.dropped += items.length;
        this.options.onError?.(error as Error, items.length);
      }
    }
  }
}
