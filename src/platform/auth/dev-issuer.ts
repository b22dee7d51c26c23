import {mkdir, readFile, writeFile} from "node:fs/promises";
import {join} from "node:path";
import {exportJWK, generateKeyPair, importJWK, type JWK, SignJWT} from "jose";

/**
 * The development issuer: an RS256 key pair kept in `.dev-keys/` (git-ignored) so that the
 * server and `npm run token` agree on it. Used only with an explicit NODE_ENV=development and no
 * AUTH_ISSUER (`npm start` and the developer commands set development when NODE_ENV is unset).
 */
export const DEV_KEYS_DIR = join(process.cwd(), ".dev-keys");
const KEY_FILE = join(DEV_KEYS_DIR, "signing-key.jwk.json");

export async function loadOrCreateDevKey(): Promise<JWK> {
  try {
    return JSON.parse(await readFile(KEY_FILE, "utf8")) as JWK;
  } catch {
    const {privateKey} = await generateKeyPair("RS256", {extractable: true, modulusLength: 2048});
    const jwk = {...(await exportJWK(privateKey)), alg: "RS256", use: "sig", kid: `dev-${Date.now().toString(36)}`};
    await mkdir(DEV_KEYS_DIR, {recursive: true, mode: 0o700});
    await writeFile(KEY_FILE, JSON.stringify(jwk), {mode: 0o600, flag: "wx"}).catch(async (error) => {
      // Another process (server or CLI) created it first: use theirs.
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    });
    return JSON.parse(await readFile(KEY_FILE, "utf8")) as JWK;
  }
}

export function publicJwk(privateJwk: JWK): JWK {
  const {kty, n, e, kid, alg, use} = privateJwk;
  return {kty, n, e, kid, alg, use};
}

export interface DevTokenOptions {
  issuer: string;
  audience: string;
  tenantClaim: string;
  tenant: string;
  subject: string;
  roles: string[];
  email?: string;
  name?: string;
  expiresInSeconds: number;
}

export async function signDevToken(privateJwk: JWK, options: DevTokenOptions): Promise<string> {
  const key = await importJWK(privateJwk, "RS256");
  return new SignJWT({
    [options.tenantClaim]: options.tenant,
    realm_access: {roles: options.roles},
    email: options.email,
    name: options.name,
    preferred_username: options.name
  })
    .setProtectedHeader({alg: "RS256", kid: privateJwk.kid, typ: "JWT"})
    .setIssuer(options.issuer)
    .setAudience(options.audience)
    .setSubject(options.subject)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + options.expiresInSeconds)
    .sign(key);
}
