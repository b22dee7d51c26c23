import {Controller, Get} from "@tsed/common";
import {Hidden} from "@tsed/schema";
import {loadOrCreateDevKey, publicJwk} from "./dev-issuer.js";

/** JWKS of the development issuer; mounted only when the development issuer is active. */
@Controller("/")
@Hidden()
export class DevIssuerController {
  @Get("/jwks.json")
  async jwks() {
    return {keys: [publicJwk(await loadOrCreateDevKey())]};
  }
}
