import {Context, Controller, Inject, Post} from "@tsed/common";
import {Name, Returns, Summary} from "@tsed/schema";
import {ErrorBody} from "../../common/error-body.model.js";
import {Authenticated} from "../../platform/auth/authenticated.decorator.js";
import {StreamToken} from "./stream.models.js";
import {StreamTokenService} from "./stream-token.service.js";

/**
 * Stream tokens for browsers, whose EventSource cannot send a header. Asking for one is a read
 * (it opens nothing but the stream a viewer may open), so a viewer's dashboard may ask too.
 */
@Controller("/stream/tokens")
@Name("Alerts")
@Authenticated({role: "viewer"})
export class StreamTokenController {
  @Inject()
  private tokens!: StreamTokenService;

  @Post("/")
  @Summary("A single-use token (60 s) to open the stream from a browser's EventSource")
  @Returns(201, StreamToken)
  @(Returns(503, ErrorBody).Description("Redis is unavailable"))
  token(@Context() $ctx: Context) {
    // The Authenticated decorator verified this header before we got here.
    const header = String($ctx.request.headers.authorization);
    return this.tokens.issue(header.replace(/^Bearer +/i, ""));
  }
}
