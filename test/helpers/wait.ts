import {setTimeout as sleep} from "node:timers/promises";

/**
 * Polls `probe` until it returns a value (not undefined, null or false) and returns it; throws
 * naming `what` after `timeoutMs`. For state that announces itself nowhere (a worker registering,
 * a job scheduler written by a boot hook): the wait ends as soon as the state is there, and the
 * bound stays well under the test's own timeout, so a failure says what never happened.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}
