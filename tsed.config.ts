import type {Env as TsEDEnv} from "@tsed/core";
import {MikroOrmContext, RetryStrategy} from "@tsed/mikro-orm";
import {analyticsOrmOptions, defaultOrmOptions} from "./src/config/mikro-orm.config.js";
import {AppConfig, DEV_ISSUER_PATH} from "./src/config/app-config.js";
import {redisOptions} from "./src/platform/cache/redis.provider.js";
import {HealthController} from "./src/platform/health/health.controller.js";
import {corsFor} from "./src/platform/http/cors.js";
import {requestId, securityHeaders} from "./src/platform/http/security-headers.js";
import {jsonBodyParser} from "./src/platform/validation/json-body.js";
import {validationErrorFormatter} from "./src/platform/validation/validation-error-formatter.js";
import {DevIssuerController} from "./src/platform/auth/dev-issuer.controller.js";
import {BEARER_SCHEME} from "./src/platform/auth/authenticated.decorator.js";
import {DEVICE_KEY_SCHEME} from "./src/platform/device-auth/device-authenticated.decorator.js";
import {apiControllers, queues} from "./src/modules/index.js";
import {NOTIFICATIONS_QUEUE} from "./src/modules/notifications/notifications.queue.js";
import {MetricsController} from "./src/platform/observability/metrics.controller.js";
import {requestObserver} from "./src/platform/observability/request-observer.js";
import {ExponentialBackoffRetryStrategy} from "./src/platform/db/exponential-backoff.retry-strategy.js";
import {LazyMikroOrmContext} from "./src/platform/db/lazy-request-context.js";

export const API_PREFIX = "/api/v1";

/** Swagger UI groups operations by these tags (controllers name theirs with @Name). */
const API_TAGS = [
  {name: "Me", description: "The caller's own user"},
  {name: "Devices", description: "Thermometers of the tenant, and their keys"},
  {
    name: "Device clients",
    description:
      "A device writes its own readings with a device key instead of a user's token. " +
      "1. An operator creates a key: `POST /api/v1/devices/{deviceId}/keys` → `{ id, key }` (the key is shown once). " +
      '2. Over HTTP: `curl -X POST $API/api/v1/device/readings -H "Authorization: Device $KEY" -H \'Content-Type: application/json\' -d \'{"temperatureCelsius": 21.5, "recordedAt": "2026-12-03T09:00:00Z"}\'` ' +
      "(in Swagger UI: Authorize → deviceKey → `Device <key>`). " +
      "3. Over MQTT 3.1.1 (port MQTT_PORT): username = the key's `id`, password = the key, topic `devices/<deviceId>/readings`, QoS 1 acknowledged once committed; " +
      'refusals arrive on `devices/<deviceId>/errors`: `mosquitto_pub -h $HOST -p $MQTT_PORT -q 1 -u $KEY_ID -P $KEY -t devices/$DEVICE_ID/readings -m \'{"temperatureCelsius": 21.5, "recordedAt": "2026-12-03T09:00:00Z"}\'`'
  },
  {name: "Readings", description: "Ingestion (single and batch) and history"},
  {name: "Alerts", description: "Alert rules and alert episodes"},
  {name: "Stats", description: "Hourly, daily and weekly statistics"},
  {name: "Admin", description: "Tenant administration (role admin)"},
  {name: "Health", description: "Liveness and readiness (public)"},
  {name: "Metrics", description: "Prometheus metrics (public)"}
];

/**
 * The Ts.ED configuration, built from the validated configuration only: port, mounts, Swagger,
 * both MikroORM contexts and BullMQ. The configuration itself is provided for injection
 * by type (`AppConfig`); Ts.ED's own `env` setting is the environment's name, as Ts.ED expects.
 */
export function buildConfiguration(config: AppConfig): Partial<TsED.Configuration> {
  return {
    env: config.nodeEnv as TsEDEnv,
    httpPort: config.port,
    httpsPort: false,
    disableComponentsScan: true,
    logger: {
      level: config.logLevel as "info",
      disableRoutesSummary: config.nodeEnv !== "development",
      disableBootstrapLog: config.nodeEnv === "test",
      jsonIndentation: 0,
      // No ignoreUrlPatterns: they cost every request a context-logger filter, and requests are
      // logged by our requestObserver (which keeps probes quiet), not by Ts.ED's logger.
      reqIdBuilder: requestId
    },
    middlewares: [
      requestObserver,
      securityHeaders,
      // Only when CORS_ORIGINS names some: other requests pay nothing for it.
      ...(config.corsOrigins.length ? [corsFor(config.corsOrigins)] : []),
      jsonBodyParser(config.bodyLimit)
    ],
    // Express tries the routes in the order they are mounted (Ts.ED adds each route to the app's
    // router): the probes, which a load balancer calls all the time, match first.
    mount: {
      "/": [HealthController, MetricsController],
      [API_PREFIX]: apiControllers as never[],
      ...(config.auth.devIssuer ? {[DEV_ISSUER_PATH]: [DevIssuerController]} : {})
    },
    // No login sessions: bearer tokens only (RouteScopedPassportModule installs no passport middleware anyway).
    passport: {disableSession: true},
    jsonMapper: {additionalProperties: false},
    ajv: {returnsCoercedValues: true, errorFormatter: validationErrorFormatter},
    mikroOrm: [defaultOrmOptions(config), analyticsOrmOptions(config)],
    imports: [
      {token: AppConfig, use: config},
      // @OverrideProvider(RetryStrategy) resolves to null (STACK-NOTES): register ours here.
      {token: RetryStrategy, useClass: ExponentialBackoffRetryStrategy},
      // Each request's entity-manager forks made on first use, not two up front (see the class).
      {token: MikroOrmContext, useClass: LazyMikroOrmContext}
    ],
    bullmq: {
      queues: [...queues],
      // BullMQ's own reconnect backoff grows to 20 s; after a Redis outage jobs should resume within ~2 s.
      connection: redisOptions(config.redisUrl, {
        maxRetriesPerRequest: null,
        connectionName: "smart-thermo-bullmq",
        retryStrategy: (attempt: number) => Math.min(attempt * 250, 2_000)
      }),
      disableWorker: !config.runWorkers,
      defaultQueueOptions: {prefix: config.queuePrefix},
      defaultWorkerOptions: {
        prefix: config.queuePrefix,
        lockDuration: config.jobLockMs,
        stalledInterval: config.jobLockMs,
        maxStalledCount: 2
      },
      // A webhook delivery mostly waits on its receiver (up to WEBHOOK_TIMEOUT_MS): one at a time,
      // a receiver answering in 50 ms capped a worker at ~20 deliveries/s (bench:notify), and one
      // that hung held up every tenant's.
      workerOptions: {[NOTIFICATIONS_QUEUE]: {concurrency: config.webhooks.concurrency}},
      logLevel: "warn"
    },
    swagger: [
      {
        path: "/doc",
        specVersion: "3.0.1",
        spec: {
          info: {
            title: "smart-thermo API",
            version: "1.0.0",
            license: {name: "Proprietary"},
            description:
              "Multi-tenant backend for smart thermometers. Every `/api/v1` route needs a bearer access token (RS256) whose `tenantId` claim names the caller's tenant; errors share one shape: `{ status, name, message, errors }`."
          },
          servers: [{url: "/", description: "This server"}],
          // Public routes (health, metrics) need no token; every /api/v1 operation declares bearer itself.
          security: [],
          tags: API_TAGS,
          components: {
            securitySchemes: {
              [BEARER_SCHEME]: {
                type: "http",
                scheme: "bearer",
                bearerFormat: "JWT",
                description: "Keycloak access token, or `npm run token` in development"
              },
              // An apiKey in the Authorization header: Swagger UI sends it as typed (`Device <key>`).
              [DEVICE_KEY_SCHEME]: {
                type: "apiKey",
                in: "header",
                name: "Authorization",
                description: "A device key, typed as `Device <key>` (create one with `POST /api/v1/devices/{deviceId}/keys`)"
              }
            }
          }
        } as never,
        showExplorer: false
      }
    ]
  };
}
