import {existsSync} from "node:fs";
import Http from "node:http";
import type {AddressInfo} from "node:net";
import {chromium, type Browser} from "playwright-core";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {newTenant} from "../helpers/tokens.js";
import {call, tenantAuth} from "./helpers/load.js";
import {type AppProcess, startApp, startOwnRedis} from "./helpers/processes.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** The browser's EventSource, as far as the page script below uses it (the project's TypeScript has no DOM types). */
interface BrowserEventSource {
  readyState: number;
  onopen: (() => void) | null;
  onerror: (() => void) | null;
  addEventListener(type: string, listener: (message: {lastEventId: string; data: string}) => void): void;
  close(): void;
}

interface Seen {
  type: string;
  id: string;
  body: {id: string; type: string; data: {alert: {id: string; version: number}}};
}

/**
 * The live stream as a web page uses it (docs/api.md, "Live stream"): a real EventSource in
 * headless Chromium, authenticated by a single-use stream token, receives the `alert.fired` a
 * violating reading causes; closed, it misses an `alert.resolved`; opened again after the last id
 * it saw, it gets that event by replay.
 */
describe("EventSource in a real browser", () => {
  let app: AppProcess;
  let redis: Awaited<ReturnType<typeof startOwnRedis>>;
  let browser: Browser;
  /** The web app's own origin: a page served from here calls the API across origins (CORS_ORIGINS). */
  let site: Http.Server;
  let siteOrigin: string;
  beforeAll(async () => {
    site = Http.createServer((_req, res) =>
      res.writeHead(200, {"content-type": "text/html"}).end("<!doctype html><title>dashboard</title>")
    );
    await new Promise<void>((resolve) => site.listen(0, "127.0.0.1", resolve));
    siteOrigin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium (.ci/run does)`);
    redis = await startOwnRedis();
    app = await startApp({REDIS_URL: redis.url, QUEUE_PREFIX: `faults-eventsource-${process.pid}`, CORS_ORIGINS: siteOrigin});
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]
    });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.stop("SIGKILL");
    await redis?.stop();
    site?.closeAllConnections();
    await new Promise((resolve) => site?.close(resolve));
  });

  it("receives alert.fired live, and after a disconnection the event it missed by replay after its last id", async () => {
    const auth = await tenantAuth(newTenant("eventsource"));
    const device = await call(app.baseUrl, auth, "POST", "/api/v1/devices", {serialNumber: "ES-1"});
    await call(app.baseUrl, auth, "POST", `/api/v1/devices/${device.id}/alert-rules`, {condition: "above", thresholdCelsius: 30});
    const post = (temperatureCelsius: number, secondsAgo: number) =>
      call(app.baseUrl, auth, "POST", `/api/v1/devices/${device.id}/readings`, {
        temperatureCelsius,
        recordedAt: new Date(Date.now() - secondsAgo * 1000).toISOString()
      });

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    // A web app's page on an origin of its own, allowed by CORS_ORIGINS; the script below is what it runs.
    await page.goto(siteOrigin);
    await page.evaluate(
      ({authorization, api}) => {
        const w = globalThis as unknown as {
          seen: Seen[];
          source?: BrowserEventSource;
          open: (after?: string) => Promise<void>;
          EventSource: new (url: string) => BrowserEventSource;
        };
        w.seen = [];
        w.open = async (after?: string) => {
          const res = await fetch(`${api}/api/v1/stream/tokens`, {method: "POST", headers: {Authorization: authorization}});
          const {streamToken} = (await res.json()) as {streamToken: string};
          const resume = after ? `&lastEventId=${encodeURIComponent(after)}` : "";
          const source = new w.EventSource(`${api}/api/v1/stream?types=alert.*&streamToken=${streamToken}${resume}`);
          for (const type of ["alert.fired", "alert.resolved"])
            source.addEventListener(type, (message) => w.seen.push({type, id: message.lastEventId, body: JSON.parse(message.data)}));
          w.source = source;
          await new Promise<void>((resolve, reject) => {
            source.onopen = () => resolve();
            source.onerror = () => reject(new Error(`EventSource failed, readyState ${source.readyState}`));
          });
        };
        return w.open();
      },
      {authorization: auth, api: app.baseUrl}
    );

    const fired = await post(35, 20);
    expect(fired.alerts).toHaveLength(1);
    await page.waitForFunction(() => (globalThis as unknown as {seen: Seen[]}).seen.length === 1, undefined, {timeout: 15_000});
    const [first] = await page.evaluate(() => (globalThis as unknown as {seen: Seen[]}).seen);
    expect(first).toMatchObject({type: "alert.fired", body: {type: "alert.fired", data: {alert: {id: fired.alerts[0].id, version: 1}}}});

    await page.evaluate(() => (globalThis as unknown as {source: BrowserEventSource}).source.close());
    await post(20, 10);
    // The resolution is committed and on the tenant's stream while the page is disconnected.
    const [alert] = await call(app.baseUrl, auth, "GET", `/api/v1/devices/${device.id}/alerts`);
    expect(alert.resolvedAt).not.toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await page.evaluate(() => (globalThis as unknown as {seen: Seen[]}).seen.length)).toBe(1);

    await page.evaluate((after) => (globalThis as unknown as {open: (after?: string) => Promise<void>}).open(after), first!.id);
    await page.waitForFunction(() => (globalThis as unknown as {seen: Seen[]}).seen.length === 2, undefined, {timeout: 15_000});
    const seen = await page.evaluate(() => (globalThis as unknown as {seen: Seen[]}).seen);
    expect(seen[1]).toMatchObject({type: "alert.resolved", body: {data: {alert: {id: fired.alerts[0].id, version: 2}}}});
    expect(seen[1]!.id > first!.id || seen[1]!.id.length > first!.id.length).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });
});
