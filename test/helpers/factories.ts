import {expect} from "vitest";
import type {Api} from "./test-server.js";

/** Registers a device through the API (as the given caller) and returns its id. */
export async function createDevice(api: Api, auth: Record<string, string>, serialNumber: string): Promise<string> {
  const res = await api.post("/api/v1/devices").set(auth).send({serialNumber});
  expect(res.status).toBe(201);
  return res.body.id as string;
}
