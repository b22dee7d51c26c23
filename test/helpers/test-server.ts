import {PlatformTest} from "@tsed/common";
import SuperTest from "supertest";
import {buildConfiguration} from "../../tsed.config.js";
import {type AppConfig, loadConfig} from "../../src/config/app-config.js";
import {Server} from "../../src/server.js";

export type Api = ReturnType<typeof SuperTest>;

/**
 * Boots the real application (real Postgres, Redis, JWKS over HTTP, migrations) once per spec
 * file. Call in beforeAll; `stopTestServer` in afterAll. Ingestion rate limits are off unless a
 * spec turns them on (they would otherwise throttle specs that post many readings per device).
 */
export async function startTestServer(overrides: Partial<AppConfig> = {}): Promise<Api> {
  await PlatformTest.bootstrap(
    Server,
    buildConfiguration({
      ...loadConfig(),
      runWorkers: false,
      rateLimit: {devicePerMinute: 0, tenantPerMinute: 0, tenantReadsPerMinute: 0, tenantHeavyReads: 1_000},
      ...overrides
    })
  )();
  return SuperTest(PlatformTest.callback());
}

export function stopTestServer() {
  return PlatformTest.reset();
}
