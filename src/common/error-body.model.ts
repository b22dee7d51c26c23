import {CollectionOf, Description, Example, Integer, Property, Required} from "@tsed/schema";

/** The one error shape of the API (docs/api.md "Errors"). */
export class ErrorBody {
  @Required()
  @Integer()
  @Example(400)
  status!: number;

  @Required()
  @Description("The status as an upper-case constant")
  @Example("BAD_REQUEST")
  name!: string;

  @Required()
  @Example('Bad request on parameter "request.body".')
  message!: string;

  @Required()
  @CollectionOf(Object)
  @Description("Details, e.g. one entry per invalid field")
  errors!: Record<string, unknown>[];

  @Property()
  @Description("Only on 429/503: seconds to wait before retrying (also in the Retry-After header)")
  retryAfterSeconds?: number;
}
