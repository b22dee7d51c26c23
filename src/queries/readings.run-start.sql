-- ReadingRepository.runStart
-- $1 deviceId, $2 before, $3 notBefore, $4 condition, $5 threshold, $6 threshold, $7 deviceId, $8 before, $9 notBefore
with "cut" as (
     select max(r."recorded_at") as "at" from "tenant_a"."temperature_readings" r
      where r."device_id" = $1::uuid and r."recorded_at" < $2 and r."recorded_at" >= coalesce($3::timestamptz, '-infinity')
        and not coalesce(case $4::text when 'above' then r."temperature_celsius" > $5::float8 when 'below' then r."temperature_celsius" < $6::float8 end, false)
   )
   select min(r."recorded_at") as "start" from "tenant_a"."temperature_readings" r, "cut"
    where r."device_id" = $7::uuid and r."recorded_at" < $8 and r."recorded_at" >= coalesce($9::timestamptz, '-infinity')
      and ("cut"."at" is null or r."recorded_at" > "cut"."at")
