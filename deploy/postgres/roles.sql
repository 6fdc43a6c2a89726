-- Kasparro's two database roles, on a database that exists. Run it as a superuser (or the
-- database's owner with CREATEROLE), with psql, on a fresh database or on one a single role
-- used so far (docs/operations.md, "From one role to two"); it is idempotent:
--
--   psql -v ON_ERROR_STOP=1 -v db=kasparro \
--        -v owner=kasparro_owner -v owner_password="$OWNER_PASSWORD" \
--        -v app=kasparro_app -v app_password="$APP_PASSWORD" -f roles.sql
--
-- owner: owns the schema and every table in it, runs the migrations (`kasparro db upgrade`:
--        compose's migrate service, the Kubernetes Job), and `kasparro db partition-history`.
-- app:   what the API and the ETL connect as: reads and writes rows, creates nothing. Default
--        privileges give it the same rights on every table the owner's migrations create later.

\set ON_ERROR_STOP on

SELECT format('CREATE ROLE %I', :'owner')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I', :'app')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app') \gexec
ALTER ROLE :"owner" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'owner_password';
ALTER ROLE :"app" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'app_password';

-- Only these two connect. TEMPORARY: the loader stages COPY batches in temporary tables.
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"owner", :"app";

-- The schema is the owner's; nobody else creates anything in it.
ALTER SCHEMA public OWNER TO :"owner";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app";

-- Tables that exist already (a database migrated before this script ran) ...
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app";
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO :"app";
-- ... and every one the owner's migrations create from now on.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO :"app";
