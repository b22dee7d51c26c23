import {groupCommitItems} from "../observability/metrics.js";

/** When a lane's group is written. */
export interface GroupPolicy<I> {
  /** How long a group waits for more items after its first one (0: it is written as soon as the lane is free). */
  windowMs: number;
  /** A group holding this much (sizeOf) is written without waiting for its window; an item larger than this is written at once, alone, beside the lane. */
  maxSize: number;
  /** An item's size (default 1). */
  sizeOf?: (item: I) => number;
  /** Names these lanes in the `group_commit_items` metric (items per write): whether grouping shares anything under the load seen. */
  metricName?: string;
}

interface Group<I, O> {
  items: I[];
  size: number;
  settle: {resolve: (output: O) => void; reject: (error: unknown) => void}[];
  /** Ends the group's window now (it is full, or the lanes are flushed). */
  close: () => void;
}

interface Lane<I, O> {
  /** Settles when the last group scheduled on the lane has been written (or failed). */
  tail: Promise<void>;
  /** The group still taking items: it has not started yet. */
  open?: Group<I, O>;
}

/**
 * Group commit, per key (a tenant): at most one write in flight per key. An item submitted while
 * the key is idle opens a group that is written once its window has passed (at once for a window
 * of 0, with whatever else arrives in the same tick); items submitted while a write runs gather in
 * the next group, written as soon as that write ends and its window has passed, or once it is full.
 * On an idle system an item waits at most the window; under load one write serves many items
 * instead of one each, which is where the cost of a statement goes: a round trip, a wake-up of the
 * database, a plan execution. An item larger than a whole group has nothing to share its write
 * with: it is written alone at once (concurrent big batches stay concurrent).
 *
 * `write` gets the group's items in the order they were submitted and returns one output per item,
 * in that order; each submitter gets its own. A write that throws rejects every item of its group
 * (the next group still runs). The write runs in the async context of the submitter that opened
 * the group. By hand because it is a few dozen lines that must match the write's contract exactly
 * (one in flight, order kept, outputs by position), which no queue library states.
 */
export class GroupCommitLanes<I, O> {
  private readonly lanes = new Map<string, Lane<I, O>>();

  constructor(
    private readonly write: (key: string, items: I[]) => Promise<O[]>,
    private readonly policy: GroupPolicy<I>
  ) {}

  submit(key: string, item: I): Promise<O> {
    const size = this.policy.sizeOf?.(item) ?? 1;
    if (size > this.policy.maxSize) {
      this.counted(1);
      return this.write(key, [item]).then((outputs) => outputs[0]!);
    }
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = {tail: Promise.resolve()}));
    let group = lane.open;
    if (!group || group.size + size > this.policy.maxSize) {
      group?.close();
      group = this.schedule(key, lane);
    }
    group.items.push(item);
    group.size += size;
    if (group.size >= this.policy.maxSize) group.close();
    return new Promise<O>((resolve, reject) => group.settle.push({resolve, reject}));
  }

  /** Ends every open group's window now and resolves once every lane has written everything submitted so far. */
  async flush(): Promise<void> {
    while (this.lanes.size > 0) {
      const lanes = [...this.lanes.values()];
      for (const lane of lanes) lane.open?.close();
      await Promise.all(lanes.map((lane) => lane.tail));
      // A lane forgets itself a tick after its tail settles.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** A write of `items` items, in `group_commit_items` when the lanes have a name. */
  private counted(items: number): void {
    if (this.policy.metricName) groupCommitItems.observe({lanes: this.policy.metricName}, items);
  }

  /** Opens a new group on the lane, to be written once everything scheduled before it is and its window has passed. */
  private schedule(key: string, lane: Lane<I, O>): Group<I, O> {
    let timer: NodeJS.Timeout | undefined;
    let endWindow!: () => void;
    const window = new Promise<void>((resolve) => (endWindow = resolve));
    const group: Group<I, O> = {
      items: [],
      size: 0,
      settle: [],
      close: () => {
        if (lane.open === group) lane.open = undefined;
        clearTimeout(timer);
        endWindow();
      }
    };
    lane.open = group;
    if (this.policy.windowMs > 0) timer = setTimeout(endWindow, this.policy.windowMs);
    else endWindow();
    const run = async () => {
      await window;
      if (lane.open === group) lane.open = undefined;
      this.counted(group.items.length);
      try {
        const outputs = await this.write(key, group.items);
        if (outputs.length !== group.items.length)
          throw new Error(`a group write returned ${outputs.length} outputs for ${group.items.length} items`);
        group.settle.forEach(({resolve}, i) => resolve(outputs[i]!));
      } catch (error) {
        for (const {reject} of group.settle) reject(error);
      }
    };
    const done = lane.tail.then(run);
    lane.tail = done;
    // The lane is forgotten once it has nothing left to write: one entry per busy key, not per key ever seen.
    void done.then(() => {
      if (lane.tail === done && !lane.open && this.lanes.get(key) === lane) this.lanes.delete(key);
    });
    return group;
  }
}
