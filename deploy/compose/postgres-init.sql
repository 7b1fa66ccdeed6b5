-- Runs once, when the compose stack's PostgreSQL volume is first initialised.
-- One login role per service, owning the schema of the same name: a service can read and
-- write its own tables only. DEV ONLY: the passwords equal the role names.
--
-- CREATE on the database is granted because `tandem-<service> migrate` issues
-- CREATE SCHEMA IF NOT EXISTS, which PostgreSQL checks against that privilege even when the
-- schema already exists.
DO $$
DECLARE
  svc text;
BEGIN
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  FOREACH svc IN ARRAY ARRAY['ingest', 'router', 'sla_monitor', 'alerts', 'api_gateway'] LOOP
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', svc, svc);
    EXECUTE format('CREATE SCHEMA %I AUTHORIZATION %I', svc, svc);
    EXECUTE format('ALTER ROLE %I SET search_path = %I', svc, svc);
    EXECUTE format('GRANT CONNECT, CREATE ON DATABASE %I TO %I', current_database(), svc);
  END LOOP;
END
$$;
