import {OverrideProvider} from "@tsed/common";
import {PassportModule} from "@tsed/passport";

/**
 * @tsed/passport's module without the `passport.initialize()` (and `passport.session()`) it puts
 * in front of every route: the probes, /metrics, /doc and the device routes would pay for it and
 * use none of it. passport 0.7's authenticate() sets up what it needs on the request itself, and
 * bearer tokens need no session, so passport runs only where @Authorize puts it (the routes of
 * the Authenticated decorator). The module still installs the protocols ($onInit).
 */
@OverrideProvider(PassportModule)
export class RouteScopedPassportModule extends PassportModule {
  override $beforeRoutesInit(): void {}
}
