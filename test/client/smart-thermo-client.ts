/**
 * How a mobile team would use smart-thermo: a client typed from the OpenAPI document
 * (openapi-typescript generates ./generated/smart-thermo.d.ts, openapi-fetch calls it).
 * The typed-client spec generates the types, type-checks this file, then runs `journey`.
 */
import createClient from "openapi-fetch";
import type {paths} from "./generated/smart-thermo.js";

export async function journey(baseUrl: string, token: string) {
  const client = createClient<paths>({baseUrl, headers: {Authorization: `Bearer ${token}`}});

  const device = await client.POST("/api/v1/devices", {body: {serialNumber: "CLIENT-1", name: "Cold room", location: "Basement"}});
  if (!device.data) throw new Error(`register failed: ${JSON.stringify(device.error)}`);
  const deviceId = device.data.id;

  const rule = await client.POST("/api/v1/devices/{deviceId}/alert-rules", {
    params: {path: {deviceId}},
    body: {condition: "above", thresholdCelsius: 8}
  });
  if (!rule.data) throw new Error(`rule failed: ${JSON.stringify(rule.error)}`);

  const now = Date.now();
  const readings = [4.5, 5.1, 9.3, 10.2].map((temperatureCelsius, i) => ({
    temperatureCelsius,
    humidity: 60,
    recordedAt: new Date(now - (4 - i) * 30_000).toISOString()
  }));
  const batch = await client.POST("/api/v1/devices/{deviceId}/readings/batch", {params: {path: {deviceId}}, body: {readings}});
  if (!batch.data) throw new Error(`batch failed: ${JSON.stringify(batch.error)}`);

  const history = await client.GET("/api/v1/devices/{deviceId}/readings", {params: {path: {deviceId}, query: {limit: 2}}});
  if (!history.data) throw new Error(`history failed: ${JSON.stringify(history.error)}`);
  const next = history.data.nextCursor
    ? await client.GET("/api/v1/devices/{deviceId}/readings", {
        params: {path: {deviceId}, query: {limit: 2, cursor: history.data.nextCursor}}
      })
    : undefined;

  const alerts = await client.GET("/api/v1/devices/{deviceId}/alerts", {params: {path: {deviceId}}});
  if (!alerts.data) throw new Error(`alerts failed: ${JSON.stringify(alerts.error)}`);

  const missing = await client.GET("/api/v1/devices/{deviceId}", {params: {path: {deviceId: "6b1f3c1e-0000-4000-8000-000000000000"}}});

  return {
    inserted: batch.data.inserted,
    firstPage: history.data.data.map((r) => r.temperatureCelsius),
    secondPage: next?.data?.data.map((r) => r.temperatureCelsius) ?? [],
    alerts: alerts.data.map((a) => ({
      peak: a.peakTemperatureCelsius,
      count: a.readingCount,
      open: a.resolvedAt === null || a.resolvedAt === undefined
    })),
    notFound: missing.error?.status
  };
}
