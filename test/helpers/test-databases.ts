/** The role the suite's servers connect as when DATABASE_URL names the administrator (global-setup.ts). */
export const TEST_APP_ROLE = "smart_thermo_test";

/**
 * `url` as the application's role: unchanged when it names a role other than the administrator's,
 * else with TEST_APP_ROLE and its password (a password, so that the same setup works on a server
 * that asks for one; this machine's trusts loopback).
 */
export function appRoleUrl(url: string, adminUrl: string): string {
  const app = new URL(url);
  if (app.username && app.username !== new URL(adminUrl).username) return app.toString();
  app.username = TEST_APP_ROLE;
  app.password = TEST_APP_ROLE;
  return app.toString();
}

/** The administrator's URL (the `postgres` database) that global-setup.ts exported, for helpers that create databases. */
export function testAdminUrl(): string {
  const url = process.env.TEST_DATABASE_ADMIN_URL;
  if (!url) throw new Error("TEST_DATABASE_ADMIN_URL is unset: run the specs through vitest, whose global setup sets it");
  return url;
}
