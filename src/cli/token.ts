/**
 * npm run token -- --tenant building_a [--role viewer|operator|admin] [--sub alice] [--ttl 3600]
 * Prints a development access token signed by the development issuer (never in production).
 * Without --role the token carries no role of ours, so it gets AUTH_DEFAULT_ROLE (viewer).
 */
import {parseArgs} from "node:util";
import {createHash} from "node:crypto";
import {loadConfig, ROLES} from "../config/app-config.js";
import {loadOrCreateDevKey, signDevToken} from "../platform/auth/dev-issuer.js";
import {isValidTenantId} from "../platform/tenancy/tenant-id.js";

const {values} = parseArgs({
  options: {
    tenant: {type: "string"},
    role: {type: "string", multiple: true, default: []},
    sub: {type: "string", default: "dev-user"},
    ttl: {type: "string", default: "3600"}
  }
});

const settings = loadConfig({developmentWhenUnset: true});
if (!settings.auth.devIssuer) {
  console.error(
    "The development issuer is off (NODE_ENV is not development, or AUTH_ISSUER is set): get a token from your identity provider."
  );
  process.exit(1);
}
const roles = values.role ?? [];
if (!values.tenant || !isValidTenantId(values.tenant) || roles.some((role) => !(ROLES as readonly string[]).includes(role))) {
  console.error(
    `usage: npm run token -- --tenant <tenant_id> [--role ${ROLES.join("|")}] [--sub name] [--ttl seconds]\n(tenant ids: lower-case letters, digits and _, starting with a letter)`
  );
  process.exit(2);
}
const ttl = Number(values.ttl);
if (!Number.isInteger(ttl) || ttl < 1 || ttl > 7 * 86_400) {
  console.error("--ttl must be a number of seconds between 1 and 604800");
  process.exit(2);
}

// A stable subject per (tenant, name) so the same command always means the same user.
const subject = createHash("sha256").update(`${values.tenant}:${values.sub}`).digest("hex").slice(0, 32);
const token = await signDevToken(await loadOrCreateDevKey(), {
  issuer: settings.auth.issuer,
  audience: settings.auth.audience,
  tenantClaim: settings.auth.tenantClaim,
  tenant: values.tenant,
  subject,
  roles: ["user", ...roles],
  name: values.sub,
  email: `${values.sub}@${values.tenant}.example`,
  expiresInSeconds: ttl
});
process.stdout.write(`${token}\n`);
