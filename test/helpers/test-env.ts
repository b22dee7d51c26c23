/**
 * Runs in every test worker before the spec imports anything: the environment that
 * src/config/env.ts will parse. globalSetup (same run) exported the JWKS address and key file,
 * and the URLs of the application's role (TEST_APP_*): those win over a config's `test.env`,
 * which names the administrator's.
 */
process.env.NODE_ENV = "test";
process.env.LOG_LEVEL ??= "error";
process.env.DATABASE_URL =
  process.env.TEST_APP_DATABASE_URL ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/smart_thermo_test";
process.env.ANALYTICS_DATABASE_URL =
  process.env.TEST_APP_ANALYTICS_DATABASE_URL ??
  process.env.ANALYTICS_DATABASE_URL ??
  "postgres://postgres@127.0.0.1:5432/smart_thermo_test_analytics";
process.env.REDIS_URL ??= "redis://127.0.0.1:6379";
process.env.AUTH_ISSUER = "http://issuer.test/realms/smart-thermo";
process.env.AUTH_AUDIENCE = "smart-thermo-api";
process.env.DB_POOL_MIN = "0";
process.env.DB_POOL_MAX ??= "10";
