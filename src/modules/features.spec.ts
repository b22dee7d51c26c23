import {readdir} from "node:fs/promises";
import {createRequire} from "node:module";
import {describe, expect, it} from "vitest";
import {features} from "./index.js";

const require = createRequire(import.meta.url);
const depcruise = require("../../.dependency-cruiser.cjs") as {
  forbidden: {name: string; from: {path?: string}; to: {path?: string | string[]}}[];
};

describe("features", () => {
  it("are listed in the order the dependency rules enforce, and every feature folder is listed", async () => {
    // feature-order-<f> forbids f to import the features after it: their order is the rules' order.
    const rules = depcruise.forbidden.filter((rule) => rule.name.startsWith("feature-order-"));
    const last = /\(([^)]*)\)/.exec(String(rules.at(-1)!.to.path))![1]!;
    const order = [...rules.map((rule) => rule.name.replace("feature-order-", "")), last];
    expect(features.map((feature) => feature.name)).toEqual(order);

    const folders = (await readdir(new URL(".", import.meta.url), {withFileTypes: true}))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
    expect(folders.sort()).toEqual([...order].sort());
  });
});
