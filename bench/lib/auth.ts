import http from "node:http";
import {exportJWK, generateKeyPair, SignJWT} from "jose";

export const BENCH_ISSUER = "http://bench.local/realms/smart-thermo";
export const BENCH_AUDIENCE = "smart-thermo-api";

/** An RS256 key published in a JWKS on loopback, the way Keycloak publishes its keys. */
export async function startJwks() {
  const {publicKey, privateKey} = await generateKeyPair("RS256", {extractable: true});
  const jwk = {...(await exportJWK(publicKey)), kid: "bench-1", alg: "RS256", use: "sig"};
  const server = http.createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({keys: [jwk]}));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const {port} = server.address() as {port: number};
  return {
    jwksUri: `http://127.0.0.1:${port}/jwks.json`,
    /** `subject` defaults to `bench-<tenant>`; give each simulated device its own to get distinct tokens. */
    token: (tenant: string, roles: string[] = ["user", "admin"], subject = `bench-${tenant}`) =>
      new SignJWT({tenantId: tenant, realm_access: {roles}})
        .setProtectedHeader({alg: "RS256", kid: "bench-1"})
        .setIssuer(BENCH_ISSUER)
        .setAudience(BENCH_AUDIENCE)
        .setSubject(subject)
        .setExpirationTime("2h")
        .sign(privateKey),
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  };
}
