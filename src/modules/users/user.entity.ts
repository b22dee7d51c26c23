import {Entity, Filter, Index, Property, Unique} from "@mikro-orm/core";
import {Description, Example, Format, Groups, MaxLength, Nullable, ReadOnly} from "@tsed/schema";
import {BaseEntity} from "../../common/base.entity.js";

export const NOT_DELETED = "notDeleted";

/**
 * A person of the tenant, created from the token (`sub`) on first use. Deleting one is a soft
 * delete (GDPR): the default filter hides the row from every query, the row stays for audit.
 */
@Entity({tableName: "users", schema: "*"})
@Filter({name: NOT_DELETED, cond: {deletedAt: null}, default: true})
export class User extends BaseEntity {
  @Property({length: 255})
  @Unique({name: "users_subject_unique"})
  @ReadOnly()
  @MaxLength(255)
  @Description("The identity provider's subject (`sub` claim)")
  @Example("6f1c2a9e-8d0b-4b7a-9c55-1f2e3d4c5b6a")
  subject!: string;

  @Property({length: 320, nullable: true})
  @Nullable(String)
  @MaxLength(320)
  @Format("email")
  @Example("alice@building-a.example")
  email?: string | null;

  @Property({length: 200, nullable: true})
  @Nullable(String)
  @MaxLength(200)
  @Example("Alice Martin")
  displayName?: string | null;

  @Property({type: "datetime", nullable: true})
  @Index({name: "users_deleted_at_index"})
  @Groups("!create", "!update")
  @Nullable(Date)
  @Format("date-time")
  @Description("Set when the user was deleted; deleted users are hidden from every query")
  deletedAt?: Date | null;
}

/** A user row as the API answers it: plain data, the same for every request that reads it (CallerUsers). */
export type UserSnapshot = Pick<User, "id" | "subject" | "email" | "displayName" | "deletedAt" | "createdAt" | "updatedAt">;
