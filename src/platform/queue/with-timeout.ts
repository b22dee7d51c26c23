/**
 * BullMQ's connection queues commands while Redis is down (it must, for its workers), so a call
 * from a request would wait forever: callers bound it and answer 503 instead.
 */
export async function withTimeout<T>(task: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  try {
    return await Promise.race([task, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
