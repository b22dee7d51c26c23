import {Entity, ManyToOne, Property, Unique} from "@mikro-orm/core";
import {
  Default,
  Description,
  Example,
  Format,
  Groups,
  MaxLength,
  MinLength,
  Nullable,
  Pattern,
  ReadOnly,
  Required,
  RequiredGroups
} from "@tsed/schema";
import {BaseEntity} from "../../common/base.entity.js";
import {User} from "../users/user.entity.js";

/** A thermometer registered in the tenant. Serial numbers are unique per tenant (per schema). */
@Entity({tableName: "devices", schema: "*"})
export class Device extends BaseEntity<"isActive" | "location"> {
  @Property({length: 64})
  @Unique({name: "devices_serial_number_unique"})
  @Groups("!update")
  @Required()
  @MinLength(1)
  @MaxLength(64)
  @Pattern(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/)
  @Description("The manufacturer's serial number, unique in the tenant")
  @Example("TH-2024-000042")
  serialNumber!: string;

  @Property({length: 100})
  // Always in responses; optional when registering (defaults to Sensor-<serial>) and patching.
  @Required()
  @RequiredGroups("!create", "!update")
  @MinLength(1)
  @MaxLength(100)
  @Description("Display name; defaults to `Sensor-<serialNumber>`")
  @Example("Server room rack 3")
  name!: string;

  @Property({length: 200, nullable: true})
  @Nullable(String)
  @MaxLength(200)
  @Description("Where the device hangs")
  @Example("Building A, floor 2, room 204")
  location?: string | null;

  @Property({default: true})
  @Groups("!create")
  @Required()
  @RequiredGroups("!update")
  @Default(true)
  @Description("Inactive devices are hidden from the list and accept no readings; DELETE deactivates")
  isActive!: boolean;

  @ManyToOne(() => User, {mapToPk: true, fieldName: "owner_id", deleteRule: "restrict"})
  @Groups("!create", "!update")
  @Required()
  @ReadOnly()
  @Format("uuid")
  @Description("The user who registered the device")
  ownerId!: string;
}
