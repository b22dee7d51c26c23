import {Description, Format, Optional, Pattern, Required} from "@tsed/schema";

export class StreamQuery {
  @Optional() @Format("uuid") @Description("Only events about this device") deviceId?: string;

  @Optional()
  @Pattern(/^[a-z][a-z_]*\.(\*|[a-z_]+)(,[a-z][a-z_]*\.(\*|[a-z_]+)){0,19}$/)
  @Description("Comma-separated event types or `prefix.*` patterns, e.g. `alert.*,reading.created` (default: every type)")
  types?: string;

  @Optional()
  @Pattern(/^\d{1,15}-\d{1,15}$/)
  @Description("Resume after this event id, like the `Last-Event-ID` header (which wins), for a new EventSource")
  lastEventId?: string;

  @Optional()
  @Pattern(/^stk_[A-Za-z0-9_-]{43}$/)
  @Description("A single-use token from `POST /api/v1/stream/tokens`, for clients that cannot send headers (EventSource)")
  streamToken?: string;
}

export class StreamToken {
  @Required()
  @Pattern(/^stk_[A-Za-z0-9_-]{43}$/)
  @Description("Use once, within 60 s: `GET /api/v1/stream?streamToken=…`")
  streamToken!: string;
  @Required() @Format("date-time") expiresAt!: Date;
}
