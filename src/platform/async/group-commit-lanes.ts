interface Group<I, O> {
  items: I[];
  settle: {resolve: (output: O) => void; reject: (error: unknown) => void}[];
}

interface Lane<I, O> {
  /** Settles when the last group scheduled on the lane has been written (or failed). */
  tail: Promise<void>;
  /** The group still taking items: it has not started yet. */
  open?: Group<I, O>;
}

/**
 * Group commit, per key (a tenant): at most one write in flight per key. An item submitted while
 * the key is idle starts a write at once (with whatever else arrives in the same tick); items
 * submitted while a write runs gather in the next group, written as soon as it ends. On an idle
 * system nothing waits; under load one write serves many items instead of one each, which is where
 * the cost of a statement goes: a round trip, a wake-up of the database, a plan execution.
 *
 * `write` gets the group's items in the order they were submitted and returns one output per item,
 * in that order; each submitter gets its own. A write that throws rejects every item of its group
 * (the next group still runs). By hand because it is a dozen lines that must match the write's
 * contract exactly (one in flight, order kept, outputs by position), which no queue library states.
 */
export class GroupCommitLanes<I, O> {
  private readonly lanes = new Map<string, Lane<I, O>>();

  constructor(
    private readonly write: (key: string, items: I[]) => Promise<O[]>,
    private readonly maxGroupSize: number
  ) {}

  submit(key: string, item: I): Promise<O> {
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = {tail: Promise.resolve()}));
    const group = lane.open && lane.open.items.length < this.maxGroupSize ? lane.open : this.schedule(key, lane);
    group.items.push(item);
    return new Promise<O>((resolve, reject) => group.settle.push({resolve, reject}));
  }

  /** Opens a new group on the lane, to be written once everything scheduled before it is. */
  private schedule(key: string, lane: Lane<I, O>): Group<I, O> {
    const group: Group<I, O> = {items: [], settle: []};
    lane.open = group;
    const run = async () => {
      if (lane.open === group) lane.open = undefined;
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
