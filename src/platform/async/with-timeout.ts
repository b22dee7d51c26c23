/**
 * `task`, or what `onTimeout` gives after `ms` if the task has not settled by then: its value, or
 * its exception (`() => { throw new ServiceUnavailableError(...) }`). The task itself goes on; the
 * caller only stops waiting for it. Used wherever a backing service may hang rather than fail:
 * BullMQ's connection queues commands while Redis is down (it must, for its workers), a health
 * probe of a dead database waits for TCP, a slow analytics merge would hold a response.
 */
export async function withTimeout<T, F = never>(task: Promise<T>, ms: number, onTimeout: () => F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<F>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(onTimeout());
      } catch (error) {
        reject(error);
      }
    }, ms);
  });
  try {
    return await Promise.race([task, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
