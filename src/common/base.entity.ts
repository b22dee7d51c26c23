import {randomUUID} from "node:crypto";
import {OptionalProps, PrimaryKey, Property} from "@mikro-orm/core";
import {Description, Example, Format, Groups, ReadOnly, Required} from "@tsed/schema";

/**
 * Columns every tenant entity shares. They are server-owned: the `create`/`update` groups leave
 * them out, so a client that sends `id` or `createdAt` has it ignored.
 */
export abstract class BaseEntity<Optional extends string = never> {
  [OptionalProps]?: "createdAt" | "updatedAt" | Optional;

  @PrimaryKey({type: "uuid"})
  @Groups("!create", "!update")
  @ReadOnly()
  @Required()
  @Format("uuid")
  @Example("0b7e7a43-3c47-4b8e-9b1b-55d2b6f0a1c4")
  id: string = randomUUID();

  @Property({type: "datetime", onCreate: () => new Date()})
  @Groups("!create", "!update")
  @ReadOnly()
  @Required()
  @Format("date-time")
  @Description("When the row was created")
  createdAt: Date = new Date();

  @Property({type: "datetime", onCreate: () => new Date(), onUpdate: () => new Date()})
  @Groups("!create", "!update")
  @ReadOnly()
  @Required()
  @Format("date-time")
  @Description("When the row last changed")
  updatedAt: Date = new Date();
}
