/**
 * npm run openapi [-- --out file]: writes the OpenAPI 3 document (openapi.json at the project root
 * by default) from the controllers' decorators alone, without a database or Redis.
 */
import "@tsed/platform-express";
import "@tsed/swagger";
import {writeFile} from "node:fs/promises";
import {parseArgs} from "node:util";
import {generateSpec} from "@tsed/schema";
import {buildConfiguration, API_PREFIX} from "../../tsed.config.js";
import {parseConfig} from "../config/app-config.js";

const {values} = parseArgs({options: {out: {type: "string", default: "openapi.json"}}});
const configuration = buildConfiguration(parseConfig({...process.env, NODE_ENV: "production"}));
const swagger = (configuration.swagger as {spec: Record<string, unknown>}[])[0]!;
const mount = configuration.mount as Record<string, unknown[]>;

const spec = generateSpec({
  tokens: Object.entries(mount).flatMap(([rootPath, controllers]) => controllers.map((token) => ({token: token as never, rootPath}))),
  specVersion: "3.0.1",
  spec: swagger.spec
});
await writeFile(values.out, `${JSON.stringify(spec, null, 2)}\n`);
console.log(`wrote ${values.out} (${Object.keys((spec as {paths: object}).paths).length} paths under ${API_PREFIX} and /health)`);
