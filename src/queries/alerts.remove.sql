-- AlertRepository.write
-- $1 ids
delete from "tenant_a"."alerts" where "id" = any($1::uuid[])
