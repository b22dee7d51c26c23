import {createServer, type Server, type Socket, connect} from "node:net";

/**
 * A TCP proxy to `target` on a free loopback port that can play a network partition: while
 * partitioned, nothing crosses it either way and nothing fails (no reset, no close), as when a
 * link or a host goes silent; what was sent is held and arrives once it is healed, as TCP's retransmissions would deliver it. Connections opened meanwhile are accepted but
 * get no byte through. node:net, no library: a few lines, and holding the bytes is the point.
 */
export async function startPartitionableProxy(target: {host: string; port: number}) {
  const links = new Set<Link>();
  let partitioned = false;
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    const link: Link = {sockets: [client, upstream], held: [[], []]};
    links.add(link);
    // Forwarded by hand rather than piped: a pipe resumes its source on the next 'drain', partition or not.
    link.sockets.forEach((from, side) => {
      const to = link.sockets[1 - side]!;
      from.on("data", (chunk: Buffer) => (partitioned ? link.held[side]!.push(chunk) : to.write(chunk)));
    });
    const close = () => {
      links.delete(link);
      for (const socket of link.sockets) socket.destroy();
    };
    for (const socket of link.sockets) socket.on("close", close).on("error", close);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const {port} = server.address() as {port: number};
  return {
    port,
    /** How many connections pass through it now. */
    get connections() {
      return links.size;
    },
    partition() {
      partitioned = true;
    },
    /** Delivers what was held, in order, and forwards again. */
    heal() {
      partitioned = false;
      for (const link of links)
        link.held.forEach((chunks, side) => {
          for (const chunk of chunks.splice(0)) link.sockets[1 - side]!.write(chunk);
        });
    },
    async close() {
      for (const link of links) for (const socket of link.sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  };
}

/** A client's connection and its own to the target, and what each sent while partitioned. */
interface Link {
  sockets: [Socket, Socket];
  held: [Buffer[], Buffer[]];
}
