import {CollectionOf, Description, Example, Format, Nullable, Pattern, Required} from "@tsed/schema";

const KEY_ID_EXAMPLE = "0b7c6a52-3f0e-4a8e-9d43-5d8f2f0c9e21";

/** A device key as listed: never its secret. */
export class DeviceKey {
  @Required()
  @Format("uuid")
  @Description("The key's id: names it here, and is the MQTT username")
  @Example(KEY_ID_EXAMPLE)
  id!: string;

  @Required()
  @Format("date-time")
  @Example("2026-12-03T09:00:00.000Z")
  createdAt!: Date;

  @Required()
  @Nullable(Date)
  @Format("date-time")
  @Description("When a device last used the key (HTTP or MQTT), to the minute; null if never")
  @Example("2026-12-03T09:30:00.000Z")
  lastUsedAt!: Date | null;
}

/** A new key: the only time its secret is shown. */
export class DeviceKeyCreated {
  @Required()
  @Format("uuid")
  @Description("The key's id (the MQTT username)")
  @Example(KEY_ID_EXAMPLE)
  id!: string;

  @Required()
  @Pattern(/^stdk_[0-9a-f-]{36}_[A-Za-z0-9_-]{43}$/)
  @Description(
    "The key, shown this once (the server keeps only its SHA-256): `Authorization: Device <key>` over HTTP, the password over MQTT. " +
      "Store it on the device; if it is lost, create another and revoke this one."
  )
  @Example(`stdk_${KEY_ID_EXAMPLE}_q0fKJ3w9yBvV5pX1nLr8sTz2uQm6hGd4cEaYbWiNoMk`)
  key!: string;

  @Required()
  @Format("date-time")
  @Example("2026-12-03T09:00:00.000Z")
  createdAt!: Date;
}

export class DeviceKeyList {
  @Required()
  @CollectionOf(DeviceKey)
  @Description("Active keys of the device, oldest first (at most two)")
  items!: DeviceKey[];
}
