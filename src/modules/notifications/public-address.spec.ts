import {describe, expect, it} from "vitest";
import {checkWebhookUrl, isPublicAddress} from "./public-address.js";

describe("isPublicAddress", () => {
  it.each([
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "127.0.0.1",
    "169.254.169.254",
    "0.0.0.0",
    "224.0.0.1",
    "100.64.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "64:ff9b::a00:1",
    "2002:a00:1::",
    "not an address"
  ])("refuses %s", (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each(["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])("accepts %s", (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });
});

describe("checkWebhookUrl", () => {
  const strict = {allowPrivate: false};
  it("refuses plain http, loopback names and literal private addresses without allowPrivate", async () => {
    await expect(checkWebhookUrl("http://example.com/hook", strict)).rejects.toThrow(/https/);
    await expect(checkWebhookUrl("https://localhost/hook", strict)).rejects.toThrow(/not public/);
    await expect(checkWebhookUrl("https://127.0.0.1/hook", strict)).rejects.toThrow(/not public/);
    await expect(checkWebhookUrl("https://[::ffff:7f00:1]/hook", strict)).rejects.toThrow(/not public/);
    await expect(checkWebhookUrl("https://[fd00::1]:8443/hook", strict)).rejects.toThrow(/not public/);
    await expect(checkWebhookUrl("ftp://8.8.8.8/", strict)).rejects.toThrow(/https/);
    await expect(checkWebhookUrl("not a url", strict)).rejects.toThrow(/valid/);
  });

  it("accepts a public literal https address, and anything http(s) with allowPrivate", async () => {
    await expect(checkWebhookUrl("https://8.8.8.8/hook", strict)).resolves.toBeInstanceOf(URL);
    await expect(checkWebhookUrl("http://127.0.0.1:9/hook", {allowPrivate: true})).resolves.toBeInstanceOf(URL);
  });
});
