import {existsSync, readFileSync} from "node:fs";
import {join} from "node:path";
import {APP_ROLE} from "../platform/db/database-role.js";

/**
 * The one place that reads process.env. Every variable README "Environment" lists is parsed and validated once;
 * a bad value stops the process at boot with a message naming the variable, instead of failing
 * later on the first request that needs it.
 */

export type NodeEnv = "development" | "production" | "test";

/** The roles of README "Who may do what", weakest first: each may do what the ones before it may. */
export const ROLES = ["viewer", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** `auto`: a new tenant's first token creates its schema; `registered`: only tenants created with `npm run tenant` exist. */
export type TenantProvisioning = "auto" | "registered";

/**
 * The validated configuration of this process. It is also the DI token under which the server
 * provides it (tsed.config.ts), so services ask for it by type — `@Inject() config!: AppConfig` —
 * instead of looking settings up by string key. A plain object of this shape is an AppConfig:
 * the class has fields only.
 */
export class AppConfig {
  nodeEnv!: NodeEnv;
  port!: number;
  databaseUrl!: string;
  analyticsDatabaseUrl!: string;
  /**
   * A role that may create roles and databases (DATABASE_ADMIN_URL, e.g. `postgres`): only
   * `npm run migrate` and `npm run tenant` use it, to create the application's role and databases
   * when they are missing (docs/database-role.md). The servers never connect with it.
   */
  databaseAdminUrl!: string | null;
  redisUrl!: string;
  auth!: {
    issuer: string;
    jwksUri: string;
    audience: string;
    tenantClaim: string;
    /** The server signs and serves its own development tokens (only with NODE_ENV=development). */
    devIssuer: boolean;
    /** The role of a token that carries none of ROLES in `realm_access.roles` (AUTH_DEFAULT_ROLE, default viewer: least privilege). */
    defaultRole: Role;
  };
  /** TENANT_PROVISIONING: `registered` by default in production, `auto` elsewhere. */
  tenantProvisioning!: TenantProvisioning;
  /**
   * When set, GET /metrics needs `Authorization: Bearer <this>` (METRICS_TOKEN). Unset, it is served
   * to anyone outside production and not at all (404) in production.
   */
  metricsToken!: string | null;
  db!: {
    poolMin: number;
    poolMax: number;
    statementTimeoutMs: number;
    /** Log every SQL statement MikroORM sends (MIKRO_ORM_DEBUG=true). */
    debug: boolean;
    /** Run even when connected as a Postgres superuser, with a warning (DB_ALLOW_SUPERUSER=true); refused otherwise. */
    allowSuperuser: boolean;
    /**
     * Connections of their own for the group-commit ingest statement, each tenant always on the same
     * one and the statements meeting there committed together (DB_INGEST_CONNECTIONS, default 1; 0:
     * the ORM's pool takes it, as any statement). See TenantAffineConnections.
     */
    ingestConnections: number;
    /**
     * Tenants' ingest statements each of those connections prepares (DB_INGEST_PREPARED_PER_CONNECTION,
     * about 0.6 MB of its backend each; default 1,024 divided among the connections).
     */
    ingestPreparedPerConnection: number;
    /**
     * How long a statement on those connections may wait for a lock before it is run on the ORM's
     * pool instead (DB_INGEST_LOCK_TIMEOUT_MS, default 50; 0: as long as the statement timeout).
     * See TenantAffineConnections.
     */
    ingestLockTimeoutMs: number;
    /** Connections of their own for GET latest's read, each tenant always on the same one (DB_READ_CONNECTIONS, default 2; 0: the ORM's pool). */
    readConnections: number;
    /** Tenants' GET latest statements each of those connections prepares (DB_READS_PREPARED_PER_CONNECTION, about 90 kB of its backend each). */
    readsPreparedPerConnection: number;
  };
  logLevel!: string;
  /** Run BullMQ workers inside the API process (the default; `npm run worker` at scale: README "Workers and jobs"). */
  runWorkers!: boolean;
  /** Schedule the nightly aggregation (cron pattern, evaluated in UTC). */
  nightlyCron!: string;
  /** Schedule the readings' partition maintenance: months ahead, raw retention (cron pattern, UTC). */
  readingsMaintenanceCron!: string;
  /** Streamed exports of readings (`GET /api/v1/readings/export`): a pool of their own, off the ORM's. */
  export!: {
    /** Where exports read from: a read replica at scale (default: DATABASE_URL). */
    databaseUrl: string;
    /** Exports running at once per process; one more waits up to 5 s, then gets 503. */
    poolMax: number;
    /**
     * Exports of one tenant running at once per process (EXPORT_MAX_PER_TENANT); one more is a 429.
     * Below poolMax, so one tenant can never hold every export connection.
     */
    maxPerTenant: number;
    /** Upper bound of one export's query (0: none). */
    statementTimeoutMs: number;
    /** A client that takes no bytes for this long is disconnected (its export query stops). */
    stallTimeoutMs: number;
    /**
     * A client that takes fewer than minBytesPerSecond over any window of rateWindowMs is
     * disconnected and its connection released (EXPORT_MIN_BYTES_PER_S, EXPORT_RATE_WINDOW_MS; 0: no minimum).
     */
    minBytesPerSecond: number;
    rateWindowMs: number;
  };
  /**
   * Shortening a tenant's raw retention refuses older readings at once, but its months are
   * dropped only this long after the change (RETENTION_GRACE_DAYS): time to set it back.
   */
  retentionGraceMs!: number;
  bodyLimit!: string;
  /** Redis key prefix of BullMQ queues (tests use their own so runs never share jobs). */
  queuePrefix!: string;
  /**
   * BullMQ job lock: a worker that dies mid-job loses its lock after this long, and the job is
   * handed to another worker (stalled-job check at the same interval).
   */
  jobLockMs!: number;
  readings!: {
    /** How far ahead of the server's clock a recordedAt may be (READING_MAX_FUTURE_SKEW_S). */
    maxFutureSkewMs: number;
    /**
     * Single readings posted over HTTP while another write of the tenant runs are written together
     * (READINGS_GROUP_COMMIT, default true). Off, each is its own statement, so concurrent requests
     * meet in Postgres (the race specs force that) on the ORM's pool, not on the tenant's
     * connection of DB_INGEST_CONNECTIONS.
     */
    groupCommit: boolean;
  };
  alerts!: {
    /** How far behind a device's newest reading a late one may still change its episodes (ALERT_LATE_HORIZON). */
    lateHorizonMs: number;
    /** How often the no_data sweep runs (NO_DATA_SWEEP_S): a silent device's episode opens at most this long after its firedAt. */
    noDataSweepMs: number;
  };
  /**
   * Requests allowed per minute (0 = unlimited), counted across instances: ingestion per device
   * and per tenant, reads per tenant; and how many database-heavy reads (history, hourly stats,
   * plans) of one tenant run at once in one process.
   */
  rateLimit!: {devicePerMinute: number; tenantPerMinute: number; tenantReadsPerMinute: number; tenantHeavyReads: number};
  /** How long SIGTERM waits for in-flight requests before closing anyway. */
  shutdownTimeoutMs!: number;
  /** The MQTT endpoint for devices (docs/api.md "Devices as clients"). */
  mqtt!: {
    /** TCP port (MQTT_PORT); 0 turns MQTT off. */
    port: number;
    /**
     * Interface of the plaintext listener (MQTT_HOST): every interface by default, except in
     * production, where plaintext binds loopback unless MQTT_ALLOW_PLAINTEXT=true (a device key
     * is the password: it must not cross a network in clear).
     */
    host: string;
    /** MQTT over TLS (MQTTS_PORT, 8883 by convention; off when unset): certificate and key files (PEM). */
    tls: {port: number; host: string; certFile: string; keyFile: string} | null;
    /** Before authentication: the CONNECT must arrive within this long (MQTT_CONNECT_TIMEOUT_MS). */
    connectTimeoutMs: number;
    /** Open MQTT connections of this process, both listeners together (MQTT_MAX_CONNECTIONS). */
    maxConnections: number;
    /** Connections of one remote address not yet past CONNACK (MQTT_MAX_UNAUTHENTICATED_PER_ADDRESS; 0: no cap). */
    maxUnauthenticatedPerAddress: number;
    /**
     * In development only, and only when MQTT_PORT is not set: when the port is taken (this kind of
     * machine runs Mosquitto on 1883), take the next free one and print it, so `npm start` comes up.
     */
    nextFreePort: boolean;
    /** Group commit: a batch of readings is written at most this long after its first message arrived (MQTT_COMMIT_WINDOW_MS), */
    commitWindowMs: number;
    /** or as soon as it holds this many readings (MQTT_COMMIT_MAX_READINGS), whichever comes first. */
    commitMaxReadings: number;
    /** Largest PUBLISH payload taken (BODY_LIMIT, as for an HTTP body); larger ones are refused with 413. */
    maxPayloadBytes: number;
    /**
     * `npm run mqtt` has no HTTP: it serves Prometheus' GET /metrics on this port (MQTT_METRICS_PORT;
     * 0: not at all), on MQTT_METRICS_HOST (loopback by default), by the rule of the API's /metrics
     * (platform/observability/metrics-access.ts).
     */
    metricsPort: number;
    metricsHost: string;
  };
  /** Outgoing webhooks (docs/api.md, "Receiving webhooks"). */
  webhooks!: {
    /** Delay before each attempt, the first included (WEBHOOK_RETRY_SCHEDULE); its length is the number of attempts. */
    retryScheduleMs: number[];
    /** A receiver must answer 2xx within this long (WEBHOOK_TIMEOUT_MS). */
    timeoutMs: number;
    /** Also plain http and private, loopback or link-local receivers (WEBHOOK_ALLOW_PRIVATE; default true in development only). */
    allowPrivate: boolean;
    /** Deliveries one worker process makes at once (WEBHOOK_CONCURRENCY). */
    concurrency: number;
  };
  /** The live event stream (docs/api.md, "Live stream"). */
  stream!: {
    /** Open streams per tenant across instances (STREAM_MAX_PER_TENANT); one more is a 429. */
    maxPerTenant: number;
    /** A comment line on every stream this often (STREAM_PING_S), so proxies keep idle streams open. */
    pingMs: number;
  };
  /** Scheduled notification work (docs/api.md, "Silences" and "Notifications: events"). */
  notifications!: {
    /**
     * How often ended silences are released and reminders sent (NOTIFY_SCAN_S): an alert held back
     * by a silence is sent at most this long after the silence ends (the contract says 60 s).
     */
    scanMs: number;
    /** Dispatched outbox events (and their delivery log) are kept this long, for replays (OUTBOX_RETENTION_DAYS). */
    outboxRetentionMs: number;
  };
  /** Web origins allowed to call the API from a browser (CORS_ORIGINS, comma-separated; none by default). */
  corsOrigins!: string[];
}

export class EnvError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid environment:\n  - ${problems.join("\n  - ")}`);
    this.name = "EnvError";
  }
}

const KEYCLOAK_REALM = "http://localhost:8080/realms/smart-thermo";
export const DEFAULT_AUDIENCE = "smart-thermo-api";
export const DEV_ISSUER_PATH = "/dev-auth";
export const DEV_ISSUER = "http://localhost/smart-thermo-dev-issuer";

/** Tenants' ingest statements the ingest connections keep prepared between them by default (DB_INGEST_PREPARED_PER_CONNECTION). */
const INGEST_PREPARED_IN_ALL = 1_024;

/**
 * @param options.developmentWhenUnset the developer commands (`npm run token`, `seed`, …) run as
 *   development when NODE_ENV is unset, like `npm start`; the server itself fails closed to production
 */
export function parseConfig(source: NodeJS.ProcessEnv = process.env, options: {developmentWhenUnset?: boolean} = {}): AppConfig {
  const problems: string[] = [];
  const read = (name: string) => {
    const value = source[name];
    return value === undefined || value.trim() === "" ? undefined : value.trim();
  };
  const int = (name: string, fallback: number, min: number, max: number) => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be an integer between ${min} and ${max} (got "${raw}")`);
      return fallback;
    }
    return value;
  };
  const url = (name: string, fallback: string, protocols: string[]) => {
    const raw = read(name) ?? fallback;
    try {
      const parsed = new URL(raw);
      if (!protocols.includes(parsed.protocol)) {
        problems.push(`${name} must use ${protocols.join(" or ")} (got "${parsed.protocol}")`);
      }
    } catch {
      problems.push(`${name} is not a valid URL`);
    }
    return raw;
  };
  /** A duration like `24h`, `90m`, `30s`, `2d` or a number of seconds, in milliseconds. */
  const duration = (name: string, fallback: string, min: number, max: number) =>
    parseDuration({[name]: read(name) ?? fallback}, name, problems, min, max);
  const bool = (name: string, fallback: boolean) => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    problems.push(`${name} must be true or false (got "${raw}")`);
    return fallback;
  };

  // Fail closed: without an explicit NODE_ENV=development the development issuer stays off.
  const nodeEnvRaw = read("NODE_ENV") ?? (options.developmentWhenUnset ? "development" : "production");
  if (!["development", "production", "test"].includes(nodeEnvRaw)) {
    problems.push(`NODE_ENV must be development, production or test (got "${nodeEnvRaw}")`);
  }
  const nodeEnv = (["development", "production", "test"].includes(nodeEnvRaw) ? nodeEnvRaw : "production") as NodeEnv;
  const port = int("PORT", 8083, 0, 65535);

  const pg = ["postgres:", "postgresql:"];
  const databaseUrl = url(
    "DATABASE_URL",
    (nodeEnv === "development" ? startedPostgresUrl() : undefined) ?? `postgres://${APP_ROLE}@localhost:5432/smart_thermo`,
    pg
  );
  const analyticsDatabaseUrl = url("ANALYTICS_DATABASE_URL", deriveAnalyticsUrl(databaseUrl), pg);
  const databaseAdminUrl = read("DATABASE_ADMIN_URL") === undefined ? null : url("DATABASE_ADMIN_URL", "", pg);
  const redisUrl = url("REDIS_URL", "redis://localhost:6379", ["redis:", "rediss:"]);

  const explicitIssuer = read("AUTH_ISSUER");
  const devIssuer = nodeEnv === "development" && explicitIssuer === undefined;
  // The development issuer's name does not depend on PORT, so `npm run token` works for any port.
  const issuer = explicitIssuer ?? (devIssuer ? DEV_ISSUER : KEYCLOAK_REALM);
  const jwksUri = url(
    "AUTH_JWKS_URI",
    devIssuer ? `http://127.0.0.1:${port}${DEV_ISSUER_PATH}/jwks.json` : `${issuer}/protocol/openid-connect/certs`,
    ["http:", "https:"]
  );
  const audience = read("AUTH_AUDIENCE") ?? DEFAULT_AUDIENCE;
  const tenantClaim = read("AUTH_TENANT_CLAIM") ?? "tenantId";
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const raw = read(name) ?? fallback;
    if ((allowed as readonly string[]).includes(raw)) return raw as T;
    problems.push(`${name} must be one of ${allowed.join(", ")} (got "${raw}")`);
    return fallback;
  };
  const metricsToken = read("METRICS_TOKEN") ?? null;
  if (metricsToken !== null && metricsToken.length < 16)
    problems.push("METRICS_TOKEN must be at least 16 characters (a secret Prometheus sends as a bearer token)");

  const poolMin = int("DB_POOL_MIN", 2, 0, 1000);
  const poolMax = int("DB_POOL_MAX", 10, 1, 1000);
  if (poolMin > poolMax) problems.push(`DB_POOL_MIN (${poolMin}) must not exceed DB_POOL_MAX (${poolMax})`);
  const statementTimeoutMs = int("DB_STATEMENT_TIMEOUT_MS", 30_000, 100, 3_600_000);
  const ingestConnections = int("DB_INGEST_CONNECTIONS", 1, 0, 100);
  // By default the ingest connections keep 1,024 tenants prepared between them (~600 MB of Postgres
  // memory at the bound), however many there are.
  const ingestPreparedPerConnection = int(
    "DB_INGEST_PREPARED_PER_CONNECTION",
    Math.ceil(INGEST_PREPARED_IN_ALL / Math.max(1, ingestConnections)),
    0,
    10_000
  );
  const ingestLockTimeoutMs = int("DB_INGEST_LOCK_TIMEOUT_MS", 50, 0, 60_000);
  const readConnections = int("DB_READ_CONNECTIONS", 2, 0, 100);
  const readsPreparedPerConnection = int("DB_READS_PREPARED_PER_CONNECTION", 1_024, 0, 10_000);

  const logLevel = read("LOG_LEVEL") ?? (nodeEnv === "test" ? "warn" : "info");
  if (!["debug", "info", "warn", "error", "off"].includes(logLevel)) {
    problems.push(`LOG_LEVEL must be debug, info, warn, error or off (got "${logLevel}")`);
  }

  // Fail closed: in production a device key (the MQTT password) crosses a network only inside TLS.
  const mqttPort = int("MQTT_PORT", 1883, 0, 65535);
  const allowPlaintext = bool("MQTT_ALLOW_PLAINTEXT", false);
  const plaintextLoopbackOnly = nodeEnv === "production" && !allowPlaintext;
  const explicitMqttHost = read("MQTT_HOST");
  const mqttHost = explicitMqttHost ?? (plaintextLoopbackOnly ? "127.0.0.1" : "0.0.0.0");
  if (plaintextLoopbackOnly && mqttPort !== 0 && !isLoopback(mqttHost)) {
    problems.push(
      `MQTT_HOST=${mqttHost} would serve plaintext MQTT (device keys in clear) beyond loopback in production: use MQTTS_PORT with MQTT_TLS_CERT/MQTT_TLS_KEY and MQTT_PORT=0, or set MQTT_ALLOW_PLAINTEXT=true (TLS terminated in front)`
    );
  }
  const mqttsPort = int("MQTTS_PORT", 0, 0, 65535);
  const certFile = read("MQTT_TLS_CERT");
  const keyFile = read("MQTT_TLS_KEY");
  let mqttTls: AppConfig["mqtt"]["tls"] = null;
  if (mqttsPort !== 0) {
    for (const [name, file] of [
      ["MQTT_TLS_CERT", certFile],
      ["MQTT_TLS_KEY", keyFile]
    ] as const) {
      if (file === undefined) problems.push(`MQTTS_PORT is set: ${name} must name a PEM file`);
      else if (!existsSync(file)) problems.push(`${name}: no such file "${file}"`);
    }
    mqttTls = {port: mqttsPort, host: explicitMqttHost ?? "0.0.0.0", certFile: certFile ?? "", keyFile: keyFile ?? ""};
  } else if (certFile !== undefined || keyFile !== undefined) {
    problems.push("MQTT_TLS_CERT / MQTT_TLS_KEY are set but MQTTS_PORT is not: set it (8883 by convention) to serve MQTT over TLS");
  }

  const exportSettings = (): AppConfig["export"] => {
    const poolMax = int("EXPORT_POOL_MAX", 4, 1, 100);
    const maxPerTenant = int("EXPORT_MAX_PER_TENANT", Math.max(1, Math.floor(poolMax / 2)), 1, 100);
    if (poolMax > 1 && maxPerTenant >= poolMax)
      problems.push(
        `EXPORT_MAX_PER_TENANT (${maxPerTenant}) must be below EXPORT_POOL_MAX (${poolMax}): one tenant must not hold every export connection`
      );
    return {
      databaseUrl: url("EXPORT_DATABASE_URL", databaseUrl, pg),
      poolMax,
      maxPerTenant,
      // Ten minutes: an export of a tenant's whole history at the minimum rate below is large; one
      // that needs longer should be cut into ranges (an hour let four slow readers hold a pool for it).
      statementTimeoutMs: int("EXPORT_STATEMENT_TIMEOUT_MS", 600_000, 0, 86_400_000),
      stallTimeoutMs: int("EXPORT_STALL_TIMEOUT_MS", 60_000, 1_000, 3_600_000),
      minBytesPerSecond: int("EXPORT_MIN_BYTES_PER_S", 16_384, 0, 1_000_000_000),
      rateWindowMs: int("EXPORT_RATE_WINDOW_MS", 30_000, 1_000, 3_600_000)
    };
  };

  const retryScheduleMs = (read("WEBHOOK_RETRY_SCHEDULE") ?? "0,5s,5m,30m,2h,5h,10h,10h")
    .split(",")
    .map((part, index) =>
      parseDuration({[`WEBHOOK_RETRY_SCHEDULE[${index}]`]: part}, `WEBHOOK_RETRY_SCHEDULE[${index}]`, problems, 0, 86_400_000)
    );
  if (retryScheduleMs.length > 20) problems.push("WEBHOOK_RETRY_SCHEDULE has at most 20 attempts");
  const corsOrigins = (read("CORS_ORIGINS") ?? "")
    .split(",")
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of corsOrigins) {
    try {
      if (new URL(origin).origin !== origin) problems.push(`CORS_ORIGINS: "${origin}" is not an origin (scheme://host[:port], no path)`);
    } catch {
      problems.push(`CORS_ORIGINS: "${origin}" is not an origin (scheme://host[:port])`);
    }
  }

  const config: AppConfig = {
    nodeEnv,
    port,
    databaseUrl,
    analyticsDatabaseUrl,
    databaseAdminUrl,
    redisUrl,
    auth: {issuer, jwksUri, audience, tenantClaim, devIssuer, defaultRole: oneOf("AUTH_DEFAULT_ROLE", ROLES, "viewer")},
    tenantProvisioning: oneOf<TenantProvisioning>(
      "TENANT_PROVISIONING",
      ["auto", "registered"],
      nodeEnv === "production" ? "registered" : "auto"
    ),
    metricsToken,
    db: {
      poolMin,
      poolMax,
      statementTimeoutMs,
      debug: bool("MIKRO_ORM_DEBUG", false),
      allowSuperuser: bool("DB_ALLOW_SUPERUSER", false),
      ingestConnections,
      ingestPreparedPerConnection,
      ingestLockTimeoutMs,
      readConnections,
      readsPreparedPerConnection
    },
    logLevel,
    runWorkers: bool("RUN_WORKERS", true),
    nightlyCron: read("NIGHTLY_CRON") ?? "15 0 * * *",
    readingsMaintenanceCron: read("READINGS_MAINTENANCE_CRON") ?? "45 0 * * *",
    export: exportSettings(),
    retentionGraceMs: int("RETENTION_GRACE_DAYS", 7, 0, 365) * 86_400_000,
    bodyLimit: read("BODY_LIMIT") ?? "1mb",
    queuePrefix: read("QUEUE_PREFIX") ?? "smart-thermo",
    shutdownTimeoutMs: int("SHUTDOWN_TIMEOUT_MS", 20_000, 0, 600_000),
    jobLockMs: int("JOB_LOCK_MS", 30_000, 1_000, 3_600_000),
    readings: {maxFutureSkewMs: int("READING_MAX_FUTURE_SKEW_S", 120, 0, 86_400) * 1000, groupCommit: bool("READINGS_GROUP_COMMIT", true)},
    alerts: {
      lateHorizonMs: duration("ALERT_LATE_HORIZON", "24h", 0, 365 * 86_400_000),
      noDataSweepMs: int("NO_DATA_SWEEP_S", 30, 1, 3_600) * 1000
    },
    mqtt: {
      port: mqttPort,
      host: mqttHost,
      tls: mqttTls,
      connectTimeoutMs: int("MQTT_CONNECT_TIMEOUT_MS", 5_000, 500, 60_000),
      maxConnections: int("MQTT_MAX_CONNECTIONS", 10_000, 1, 1_000_000),
      maxUnauthenticatedPerAddress: int("MQTT_MAX_UNAUTHENTICATED_PER_ADDRESS", 20, 0, 100_000),
      nextFreePort: nodeEnv === "development" && read("MQTT_PORT") === undefined,
      commitWindowMs: int("MQTT_COMMIT_WINDOW_MS", 5, 0, 1_000),
      commitMaxReadings: int("MQTT_COMMIT_MAX_READINGS", 1_000, 1, 10_000),
      maxPayloadBytes: byteSize("BODY_LIMIT", read("BODY_LIMIT") ?? "1mb", problems),
      metricsPort: int("MQTT_METRICS_PORT", 0, 0, 65535),
      metricsHost: read("MQTT_METRICS_HOST") ?? "127.0.0.1"
    },
    webhooks: {
      retryScheduleMs,
      timeoutMs: int("WEBHOOK_TIMEOUT_MS", 10_000, 100, 120_000),
      // Fails closed: receivers on this machine or network only where a developer said so.
      allowPrivate: bool("WEBHOOK_ALLOW_PRIVATE", nodeEnv === "development"),
      concurrency: int("WEBHOOK_CONCURRENCY", 32, 1, 1_000)
    },
    stream: {maxPerTenant: int("STREAM_MAX_PER_TENANT", 200, 1, 100_000), pingMs: int("STREAM_PING_S", 15, 1, 300) * 1000},
    notifications: {
      scanMs: int("NOTIFY_SCAN_S", 15, 1, 60) * 1000,
      // Longer than a silence (7 days) and a delivery's retries (5 days): both look back at events.
      outboxRetentionMs: int("OUTBOX_RETENTION_DAYS", 14, 8, 3_650) * 86_400_000
    },
    corsOrigins,
    rateLimit: {
      devicePerMinute: int("RATE_LIMIT_DEVICE_PER_MINUTE", 120, 0, 10_000_000),
      tenantPerMinute: int("RATE_LIMIT_TENANT_PER_MINUTE", 60_000, 0, 100_000_000),
      tenantReadsPerMinute: int("RATE_LIMIT_TENANT_READS_PER_MINUTE", 6_000, 0, 100_000_000),
      tenantHeavyReads: int("TENANT_HEAVY_READS", 4, 1, 1_000)
    }
  };
  if (problems.length) throw new EnvError(problems);
  return config;
}

/** 127.0.0.0/8, ::1 or localhost: an interface no other machine reaches. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

/** A duration like `24h`, `90m`, `30s`, `2d` or a number of seconds, in milliseconds. */
function parseDuration(source: NodeJS.ProcessEnv, name: string, problems: string[], min: number, max: number): number {
  const raw = (source[name] ?? "").trim();
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(raw);
  const ms = match ? Number(match[1]) * {ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000}[(match[2] ?? "s") as "s"] : Number.NaN;
  if (!Number.isFinite(ms) || ms < min || ms > max) {
    problems.push(`${name} must be a duration such as 24h, 90m or 3600s, at most ${max / 86_400_000} days (got "${raw}")`);
    return 0;
  }
  return Math.round(ms);
}

/** `1mb`, `512kb`, `100000` (bytes), as body-parser reads BODY_LIMIT. */
function byteSize(name: string, raw: string, problems: string[]): number {
  const match = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i.exec(raw);
  if (!match) {
    problems.push(`${name} must be a size such as 1mb or 512kb (got "${raw}")`);
    return 1024 * 1024;
  }
  const unit = (match[2] ?? "b").toLowerCase() as "b" | "kb" | "mb" | "gb";
  return Math.floor(Number(match[1]) * {b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3}[unit]);
}

/**
 * In development, the Postgres that `npm start` picked for itself (its embedded one) while it runs: it writes
 * `.data/dev-services.json` and removes it when it stops. The commands a newcomer runs next
 * (`npm run seed`, `migrate`, `token`) then find the same database without a DATABASE_URL.
 */
function startedPostgresUrl(): string | undefined {
  const file = join(process.cwd(), ".data", "dev-services.json");
  if (!existsSync(file)) return undefined;
  try {
    const {pid, databaseUrl} = JSON.parse(readFileSync(file, "utf8")) as {pid?: unknown; databaseUrl?: unknown};
    if (typeof pid !== "number" || typeof databaseUrl !== "string") return undefined;
    process.kill(pid, 0); // throws when that `npm start` is gone: the file is stale
    return databaseUrl;
  } catch {
    return undefined;
  }
}

/** The analytics database defaults to a sibling database on the same server: `<name>_analytics`. */
export function deriveAnalyticsUrl(databaseUrl: string): string {
  try {
    const parsed = new URL(databaseUrl);
    const name = parsed.pathname.replace(/^\//, "") || "smart_thermo";
    parsed.pathname = `/${name}_analytics`;
    return parsed.toString();
  } catch {
    return databaseUrl;
  }
}

let cached: AppConfig | undefined;

/**
 * The validated configuration of this process; exits with a clear message when it is wrong.
 * @param options see parseConfig (read once: the first call decides)
 */
export function loadConfig(options: {developmentWhenUnset?: boolean} = {}): AppConfig {
  if (!cached) {
    // The developer commands read a `.env` of the checkout, like `npm start` (scripts/start.mjs),
    // so that they reach the same databases; a variable already set wins. Servers never do.
    if (options.developmentWhenUnset && existsSync(".env")) process.loadEnvFile(".env");
    try {
      cached = parseConfig(process.env, options);
    } catch (error) {
      if (error instanceof EnvError) {
        console.error(error.message);
        process.exit(1);
      }
      throw error;
    }
  }
  return cached;
}
