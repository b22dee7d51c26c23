import {expect} from "vitest";
import type {Api} from "./test-server.js";
import {bearer, type TokenOptions} from "./tokens.js";

/**
 * `Authorization` header for a new user of `tenant` (bearer), after its first request: with
 * TENANT_PROVISIONING=auto (the tests' setting) that request creates and migrates the tenant's
 * schema, so the tenant's tables exist from here on.
 */
export async function provisionedBearer(
  api: Api,
  tenant: string,
  options: Omit<TokenOptions, "tenant"> = {}
): Promise<Record<string, string>> {
  const auth = await bearer(tenant, options);
  const res = await api.get("/api/v1/me").set(auth);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return auth;
}

/** Registers a device through the API (as the given caller) and returns its id. */
export async function createDevice(api: Api, auth: Record<string, string>, serialNumber: string): Promise<string> {
  const res = await api.post("/api/v1/devices").set(auth).send({serialNumber});
  expect(res.status).toBe(201);
  return res.body.id as string;
}

/** Adds an alert rule to a device through the API (as the given caller) and returns the created rule. */
export async function createRule(
  api: Api,
  auth: Record<string, string>,
  deviceId: string,
  body: object
): Promise<{id: string} & Record<string, unknown>> {
  const res = await api.post(`/api/v1/devices/${deviceId}/alert-rules`).set(auth).send(body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** Posts a batch of readings through the API (as the given caller), expects 200 and returns the response (its receipt). */
export async function postBatch(
  api: Api,
  auth: Record<string, string>,
  deviceId: string,
  readings: {temperatureCelsius: number; recordedAt: string}[]
) {
  const res = await api.post(`/api/v1/devices/${deviceId}/readings/batch`).set(auth).send({readings});
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res;
}

/** `count` readings of one device, 30 s apart from `startMs`, each at `celsius`: a batch's body. */
export function readingSeries(startMs: number, count: number, celsius = 20): {temperatureCelsius: number; recordedAt: string}[] {
  return Array.from({length: count}, (_, k) => ({temperatureCelsius: celsius, recordedAt: new Date(startMs + k * 30_000).toISOString()}));
}
