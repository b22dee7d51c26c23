import {lookup} from "node:dns/promises";
import ipaddr from "ipaddr.js";

/**
 * Whether a webhook may connect to this address when private receivers are not allowed: only
 * ipaddr.js' `unicast` range, that is none of private, loopback, link-local, multicast,
 * unspecified, carrier-grade NAT, unique-local, documentation, 6to4/Teredo/NAT64 (which embed an
 * IPv4 address we would have to check again) or reserved. IPv4-mapped IPv6 (`::ffff:10.0.0.1`) is
 * judged as the IPv4 address it maps to. An allowlist, so a range ipaddr.js adds later is refused.
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  return ipaddr.process(address).range() === "unicast";
}

export class WebhookUrlError extends Error {}

export interface UrlPolicy {
  /** WEBHOOK_ALLOW_PRIVATE: plain http and any address. */
  allowPrivate: boolean;
}

/**
 * The URL's protocol and host as the policy allows them (throws WebhookUrlError with a message a
 * client can act on). Without allowPrivate: https only, and every address the host resolves to
 * must be public (a name with one private address among public ones is refused: the resolver
 * could hand out either).
 */
export async function checkWebhookUrl(raw: string, policy: UrlPolicy): Promise<URL> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookUrlError("url is not a valid absolute URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new WebhookUrlError("url must use https");
  if (url.username || url.password) throw new WebhookUrlError("url must not carry credentials");
  if (policy.allowPrivate) return url;
  if (url.protocol !== "https:") throw new WebhookUrlError("url must use https (plain http only with WEBHOOK_ALLOW_PRIVATE=true)");
  await resolvePublic(url.hostname);
  return url;
}

/**
 * The addresses of `hostname`, all of them public, or a WebhookUrlError. Connecting to one of the
 * returned addresses (not resolving again) is what defeats DNS rebinding.
 */
export async function resolvePublic(hostname: string): Promise<{address: string; family: number}[]> {
  const host = hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
  if (ipaddr.isValid(host)) {
    if (!isPublicAddress(host)) throw new WebhookUrlError(`url's address ${host} is not public`);
    return [{address: host, family: ipaddr.parse(host).kind() === "ipv6" ? 6 : 4}];
  }
  let addresses: {address: string; family: number}[];
  try {
    addresses = await lookup(host, {all: true, verbatim: true});
  } catch {
    throw new WebhookUrlError(`url's host ${host} does not resolve`);
  }
  const refused = addresses.find((a) => !isPublicAddress(a.address));
  if (!addresses.length || refused)
    throw new WebhookUrlError(`url's host ${host} resolves to ${refused?.address ?? "nothing"}, which is not public`);
  return addresses;
}
