import {readFileSync} from "node:fs";

/** A V8 heap snapshot (`--heapsnapshot-signal`, `v8.writeHeapSnapshot`): flat node fields and a string table. */
interface HeapSnapshot {
  snapshot: {meta: {node_fields: string[]; node_types: [string[], ...unknown[]]}};
  nodes: number[];
  strings: string[];
}

/**
 * Self size and count of the objects of a heap snapshot, by kind: the constructor name for
 * objects, `(string)`, `(closure) name`, `(code)`, … — what a comparison of two snapshots needs to
 * say which kind of object grew.
 */
export function heapByKind(file: string): Map<string, {count: number; bytes: number}> {
  const snapshot = JSON.parse(readFileSync(file, "utf8")) as HeapSnapshot;
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt] = [fields.indexOf("type"), fields.indexOf("name"), fields.indexOf("self_size")];
  const byKind = new Map<string, {count: number; bytes: number}>();
  for (let i = 0; i < snapshot.nodes.length; i += fields.length) {
    const type = types[snapshot.nodes[i + typeAt]!]!;
    const name = snapshot.strings[snapshot.nodes[i + nameAt]!]!;
    const kind = type === "object" || type === "native" ? name : type === "closure" ? `(closure) ${name}` : `(${type})`;
    const entry = byKind.get(kind) ?? {count: 0, bytes: 0};
    entry.count++;
    entry.bytes += snapshot.nodes[i + sizeAt]!;
    byKind.set(kind, entry);
  }
  return byKind;
}

/**
 * What grew between two snapshots, per `per` (tenants, say): the live bytes in all (a snapshot is
 * taken after a full GC, so this is what is retained) and the kinds that grew most.
 */
export function heapGrowth(
  before: string,
  after: string,
  per: number,
  top = 15
): {bytes: number; kinds: {kind: string; bytes: number; count: number}[]} {
  const [a, b] = [heapByKind(before), heapByKind(after)];
  const total = (kinds: Map<string, {bytes: number}>) => [...kinds.values()].reduce((sum, {bytes}) => sum + bytes, 0);
  const kinds = [...b]
    .map(([kind, {count, bytes}]) => ({
      kind,
      bytes: (bytes - (a.get(kind)?.bytes ?? 0)) / per,
      count: (count - (a.get(kind)?.count ?? 0)) / per
    }))
    .sort((x, y) => y.bytes - x.bytes)
    .slice(0, top);
  return {bytes: (total(b) - total(a)) / per, kinds};
}
