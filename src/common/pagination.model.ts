import {Default, Description, Integer, Maximum, Minimum} from "@tsed/schema";

export const MAX_PAGE_SIZE = 100;

/** `?page=&pageSize=` of offset-paginated lists (small collections such as devices). */
export class PageQuery {
  @Integer()
  @Minimum(1)
  @Maximum(1_000_000)
  @Default(1)
  @Description("1-based page number")
  page: number = 1;

  @Integer()
  @Minimum(1)
  @Maximum(MAX_PAGE_SIZE)
  @Default(20)
  @Description(`Items per page (at most ${MAX_PAGE_SIZE})`)
  pageSize: number = 20;
}
