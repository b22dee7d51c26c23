import {connect, createServer, type Server, type Socket} from "node:net";

/**
 * A TCP proxy to `target` on a free loopback port that can play a network partition: while
 * partitioned, nothing crosses it either way and nothing fails (no reset, no close), as when a
 * link or a host goes silent. What is sent meanwhile is held, and delivered once it heals, as
 * TCP's retransmissions would deliver it; so is a side's close (FIN), after what it sent before.
 * A side that resets its connection (RST) has what it sent and not yet delivered dropped, as TCP
 * drops unsent data on a reset. Connections opened meanwhile are accepted but get no byte through.
 * node:net, no library: a few lines, and holding the bytes is the point.
 */
export async function startPartitionableProxy(target: {host: string; port: number}) {
  const links = new Set<Link>();
  let partitioned = false;
  const server: Server = createServer({allowHalfOpen: true}, (client) => {
    const upstream = connect({port: target.port, host: target.host, allowHalfOpen: true});
    const link: Link = {sockets: [client, upstream], held: [[], []], ended: [false, false]};
    links.add(link);
    link.sockets.forEach((from, side) => {
      const to = link.sockets[1 - side]!;
      // Forwarded by hand rather than piped: a pipe resumes its source on the next 'drain', partition or not.
      from.on("data", (chunk: Buffer) => (partitioned ? link.held[side]!.push(chunk) : to.write(chunk)));
      from.on("end", () => (partitioned ? (link.ended[side] = true) : to.end()));
      from.on("error", () => cut(link));
      from.on("close", () => {
        if (link.sockets.every((socket) => socket.destroyed)) links.delete(link);
      });
    });
  });
  const cut = (link: Link) => {
    links.delete(link);
    for (const socket of link.sockets) socket.destroy();
  };
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const {port} = server.address() as {port: number};
  return {
    port,
    partition() {
      partitioned = true;
    },
    /** Delivers what was held, in order, then the closes held, and forwards again. */
    heal() {
      partitioned = false;
      for (const link of links)
        link.sockets.forEach((_, side) => {
          const to = link.sockets[1 - side]!;
          for (const chunk of link.held[side]!.splice(0)) to.write(chunk);
          if (link.ended[side]) to.end();
        });
    },
    async close() {
      for (const link of links) cut(link);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  };
}

/** A client's connection and its own to the target; what each side sent, and whether it closed, while partitioned. */
interface Link {
  sockets: [Socket, Socket];
  held: [Buffer[], Buffer[]];
  ended: [boolean, boolean];
}
