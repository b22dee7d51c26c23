import {readFileSync} from "node:fs";
import {describe, expect, it} from "vitest";
import {parse} from "yaml";

/**
 * There is no Docker engine where the suite runs, so the compose stack is checked as text: what
 * a security review of it asked for must stay true when someone edits it.
 */
// `merge`: the file uses YAML merge keys (`<<: *anchor`), as compose does.
const compose = parse(readFileSync("docker-compose.yml", "utf8"), {merge: true}) as {
  services: Record<
    string,
    {ports?: string[]; environment?: Record<string, string>; depends_on?: Record<string, {condition: string}>; command?: string[]}
  >;
};
const composeText = readFileSync("docker-compose.yml", "utf8");
const envExample = readFileSync(".env.example", "utf8");
const realm = JSON.parse(readFileSync("docker/keycloak/smart-thermo-realm.json", "utf8")) as {
  sslRequired: string;
  bruteForceProtected: boolean;
  roles: {realm: {name: string}[]};
  users: {username: string; realmRoles: string[]}[];
};

describe("docker-compose.yml and the Keycloak realm", () => {
  it("publishes every port on 127.0.0.1 only", () => {
    const ports = Object.values(compose.services).flatMap((service) => service.ports ?? []);
    expect(ports.length).toBeGreaterThanOrEqual(4);
    for (const port of ports) expect(port).toMatch(/^127\.0\.0\.1:(\d+|\$\{\w+:-\d+\}):\d+$/);
  });

  it("takes every password from .env, which .env.example lists and git ignores", () => {
    expect(composeText).not.toMatch(/postgres:postgres@|PASSWORD: (postgres|admin)\b/);
    const required = [...composeText.matchAll(/\$\{(\w+):\?/g)].map((m) => m[1]!);
    expect(new Set(required)).toEqual(
      new Set(["POSTGRES_PASSWORD", "SMART_THERMO_DB_PASSWORD", "REDIS_PASSWORD", "KEYCLOAK_ADMIN_PASSWORD"])
    );
    for (const name of required) expect(envExample).toMatch(new RegExp(`^${name}=$`, "m"));
    expect(readFileSync(".gitignore", "utf8")).toMatch(/^\.env$/m);
    expect(compose.services.redis!.command).toEqual(expect.arrayContaining(["--requirepass"]));
  });

  it("runs the api and worker as the application's role, which the postgres container creates, never as the superuser", () => {
    for (const name of ["api", "worker"]) {
      for (const variable of ["DATABASE_URL", "ANALYTICS_DATABASE_URL"]) {
        const url = compose.services[name]!.environment![variable]!;
        expect(url, `${name} ${variable}`).toMatch(
          /^postgres:\/\/smart_thermo:\$\{SMART_THERMO_DB_PASSWORD(:\?[^}]*)?\}@postgres:5432\/smart_thermo(_analytics)?$/
        );
      }
      expect(Object.keys(compose.services[name]!.environment!)).not.toContain("DATABASE_ADMIN_URL");
    }
    const postgres = compose.services.postgres as {volumes: string[]; environment: Record<string, string>};
    expect(postgres.volumes).toContain("./docker/postgres:/docker-entrypoint-initdb.d:ro");
    expect(postgres.environment.POSTGRES_DB).toBeUndefined(); // the init script creates the databases, owned by the role
    const init = readFileSync("docker/postgres/10-smart-thermo-role.sh", "utf8");
    expect(init).toMatch(
      /create role smart_thermo login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password :'password';/
    );
    for (const database of ["smart_thermo", "smart_thermo_analytics"])
      expect(init).toContain(`create database ${database} owner smart_thermo;`);
  });

  it("starts the API once Keycloak is healthy, and runs jobs in the worker container only", () => {
    for (const name of ["api", "worker"]) expect(compose.services[name]!.depends_on!.keycloak).toEqual({condition: "service_healthy"});
    expect(compose.services.api!.environment!.RUN_WORKERS).toBe("false");
    expect(compose.services.worker!.environment!.RUN_WORKERS).toBeUndefined();
  });

  it("imports a realm with brute-force protection, SSL outside private networks, and the three roles", () => {
    expect(realm.sslRequired).toBe("external");
    expect(realm.bruteForceProtected).toBe(true);
    expect(realm.roles.realm.map((role) => role.name)).toEqual(["viewer", "operator", "admin"]);
    expect(Object.fromEntries(realm.users.map((user) => [user.username, user.realmRoles]))).toEqual({
      alice: ["admin"],
      bob: ["operator"],
      carol: ["viewer"]
    });
  });
});
