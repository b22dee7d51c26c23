#!/bin/sh
# The postgres image runs this once, when its container initialises an empty data volume
# (/docker-entrypoint-initdb.d): the application's role, smart_thermo, LOGIN but not a
# superuser (no CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS), owning the API's two databases.
# The api and worker containers connect as it; POSTGRES_USER (postgres) stays for administration.
# See docs/database-role.md, which also says how to move a volume made before this script existed.
set -e
: "${SMART_THERMO_DB_PASSWORD:?set SMART_THERMO_DB_PASSWORD in .env (see .env.example)}"
# psql quotes the password (:'password'), so any character is safe in it.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -v password="$SMART_THERMO_DB_PASSWORD" <<'SQL'
create role smart_thermo login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password :'password';
create database smart_thermo owner smart_thermo;
create database smart_thermo_analytics owner smart_thermo;
SQL
