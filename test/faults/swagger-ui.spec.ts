import {existsSync, mkdirSync} from "node:fs";
import {chromium, type Browser} from "playwright-core";
import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {newTenant, token} from "../helpers/tokens.js";
import {type AppProcess, startApp, startOwnRedis} from "./helpers/processes.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

describe("Swagger UI in a real browser", () => {
  let app: AppProcess;
  let redis: Awaited<ReturnType<typeof startOwnRedis>>;
  let browser: Browser;
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium (.ci/run does)`);
    redis = await startOwnRedis();
    app = await startApp({REDIS_URL: redis.url});
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync"
      ]
    });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.stop("SIGKILL");
    await redis?.stop();
  });

  it("lists the routes, accepts a bearer token in Authorize, and Try it out on a GET answers 200", async () => {
    const page = await browser.newPage({viewport: {width: 1280, height: 1600}});
    // The page runs under its Content-Security-Policy: anything the policy blocks is a failure.
    const blocked: string[] = [];
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) blocked.push(message.text());
    });
    const response = await page.goto(`${app.baseUrl}/doc/`);
    expect(response?.headers()["content-security-policy"]).toContain("script-src 'self' 'unsafe-inline'");
    await page.waitForSelector(".opblock", {timeout: 30_000});
    const paths = await page.locator(".opblock-summary-path").allInnerTexts();
    const flat = paths.map((p) => p.replace(/\u200b/g, "").trim());
    expect(flat).toEqual(expect.arrayContaining(["/api/v1/me", "/api/v1/devices", "/api/v1/devices/{deviceId}", "/health/ready"]));

    const bearer = await token({tenant: newTenant("swagger"), sub: "swagger-user"});
    await page.click("button.authorize");
    await page.fill(".auth-container input[type=text], .auth-container input", bearer);
    await page.click(".auth-btn-wrapper button.authorize");
    await page.click(".auth-btn-wrapper button.btn-done, button.close-modal");

    const operation = page.locator(".opblock-get", {has: page.locator('.opblock-summary-path[data-path="/api/v1/me"]')}).first();
    await operation.locator(".opblock-summary").click();
    await operation.locator("button.try-out__btn").click();
    await operation.locator("button.execute").click();
    const status = operation.locator(".live-responses-table tr.response .response-col_status").first();
    await status.waitFor({timeout: 30_000});
    expect((await status.innerText()).trim()).toBe("200");
    expect(await operation.locator(".live-responses-table .microlight, .live-responses-table pre").first().innerText()).toContain(
      "swagger-user"
    );

    expect(blocked).toEqual([]);

    mkdirSync(".artifacts", {recursive: true});
    await page.screenshot({path: ".artifacts/swagger-ui.png", fullPage: false});
  });
});
