import {afterAll, beforeAll, describe, expect, it} from "vitest";
import {type Api, startTestServer, stopTestServer} from "../helpers/test-server.js";

interface Operation {
  security?: Record<string, unknown>[];
  parameters?: {in: string}[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
}

describe("the OpenAPI document says every status a route can answer", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startTestServer();
  });
  afterAll(async () => {
    await stopTestServer();
  });

  it("documents 401 and 503 on every /api/v1 operation, 403 on those of users (bearer tokens: tenant, role), 400/404 with path parameters, 400 with query parameters, 400/413 with a body", async () => {
    const spec = (await api.get("/doc/swagger.json")).body as {paths: Record<string, Record<string, Operation>>};
    const operations = Object.entries(spec.paths)
      .filter(([path]) => path.startsWith("/api/v1/"))
      .flatMap(([path, methods]) =>
        Object.entries(methods).map(([method, operation]) => ({name: `${method.toUpperCase()} ${path}`, operation}))
      );
    expect(operations.length).toBeGreaterThanOrEqual(25);
    for (const {name, operation} of operations) {
      const where = new Set((operation.parameters ?? []).map((p) => p.in));
      // A device's own routes (device key) have no 403: the key names its tenant and device, and no role applies.
      const expected = operation.security?.some((scheme) => "bearer" in scheme) ? ["401", "403", "503"] : ["401", "503"];
      if (where.has("path")) expected.push("400", "404");
      if (where.has("query")) expected.push("400");
      if (operation.requestBody) expected.push("400", "413");
      expect(Object.keys(operation.responses), name).toEqual(expect.arrayContaining(expected));
    }
  });
});
