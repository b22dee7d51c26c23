import {Counter, collectDefaultMetrics, Gauge, Histogram, Registry} from "prom-client";

/**
 * Prometheus metrics (prom-client). One registry per process; the metric objects are module
 * singletons because prom-client requires a metric name to be registered once.
 */
export const metricsRegistry = new Registry();
collectDefaultMetrics({register: metricsRegistry});

export const httpRequestDuration = new Histogram({
  name: "http_request_duration_seconds",
  help: "HTTP request latency by route template and status",
  labelNames: ["method", "route", "status"] as const,
  buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [metricsRegistry]
});

export const readingsIngested = new Counter({
  name: "readings_ingested_total",
  help: "Readings stored (duplicates excluded)",
  registers: [metricsRegistry]
});

export const readingDuplicates = new Counter({
  name: "reading_duplicates_total",
  help: "Readings received again for an existing (device, recordedAt) and not stored",
  registers: [metricsRegistry]
});

export const alertsOpened = new Counter({
  name: "alerts_opened_total",
  help: "Alert episodes opened",
  registers: [metricsRegistry]
});

export const jobDuration = new Histogram({
  name: "job_duration_seconds",
  help: "BullMQ job run time by queue, job name and outcome",
  labelNames: ["queue", "name", "outcome"] as const,
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900],
  registers: [metricsRegistry]
});

export const mqttConnections = new Gauge({
  name: "mqtt_connections",
  help: "Authenticated MQTT connections of devices",
  registers: [metricsRegistry]
});

export const mqttMessages = new Counter({
  name: "mqtt_messages_total",
  help: "MQTT PUBLISH packets of devices by outcome: committed (acknowledged after commit), rejected (acknowledged, reported on the errors topic), dropped (connection closed unacknowledged)",
  labelNames: ["outcome"] as const,
  registers: [metricsRegistry]
});

export const mqttCommitBatch = new Histogram({
  name: "mqtt_commit_batch_readings",
  help: "Readings per group commit of MQTT messages",
  buckets: [1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000],
  registers: [metricsRegistry]
});

export const mqttAckLatency = new Histogram({
  name: "mqtt_ack_seconds",
  help: "From a device's PUBLISH reaching the server to its acknowledgement (QoS 1: the PUBACK is written then): validation, rate limit, the group commit window and the write until commit",
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5],
  registers: [metricsRegistry]
});

export const mqttCommitDuration = new Histogram({
  name: "mqtt_commit_seconds",
  help: "A group commit of MQTT messages, from sealing the group to the commit of its shared statement (the first messages answered)",
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5],
  registers: [metricsRegistry]
});

export const mqttConnectionsRefused = new Counter({
  name: "mqtt_connections_refused_total",
  help: "MQTT connections closed by the server's own bounds before or outside aedes: max_connections (MQTT_MAX_CONNECTIONS), unauthenticated_per_address (MQTT_MAX_UNAUTHENTICATED_PER_ADDRESS), frame_too_large (a packet announced more than its limit)",
  labelNames: ["reason"] as const,
  registers: [metricsRegistry]
});

export const groupCommitItems = new Histogram({
  name: "group_commit_items",
  help: "Items per write of a group-commit lane, by lanes: readings_http and readings_mqtt (a tenant's ingest batches per statement), ingest_transaction (tenants' statements per transaction of a tenant-affine connection), daily_stats_refresh (writes per DailyStats merge). Near 1 means nothing is shared",
  labelNames: ["lanes"] as const,
  buckets: [1, 2, 4, 8, 16, 32, 64, 128],
  registers: [metricsRegistry]
});

export const outboxRelayEvents = new Histogram({
  name: "outbox_relay_events",
  help: "Events per outbox relay transaction (a tenant's committed events handed to the stream and to webhook deliveries together). 0 is a transaction that found nothing left; near 1 means each event paid a transaction of its own",
  buckets: [0, 1, 2, 4, 8, 16, 32, 64, 128],
  registers: [metricsRegistry]
});
