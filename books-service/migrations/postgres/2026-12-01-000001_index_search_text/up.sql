-- Free-text search (`search_text LIKE '%…%'`) served by a trigram index. pg_trgm ships with
-- PostgreSQL (contrib) and is a trusted extension: a user with CREATE on the database may create
-- it. Without that right an operator creates it beforehand, and then this statement does nothing.
-- The message is all a failed start-up shows (not a HINT), so it says what to do.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'books-service needs the PostgreSQL extension pg_trgm, which its database user may not create: as a user who may, run CREATE EXTENSION pg_trgm in this database (or grant this user CREATE on it), then start books-service again';
    WHEN undefined_file THEN
        RAISE EXCEPTION 'books-service needs the PostgreSQL extension pg_trgm, which this server lacks: install PostgreSQL''s contrib modules on it, then start books-service again';
END
$$;

-- search_text is lower-cased already, so the index needs no expression; LIKE rechecks every
-- candidate, so the index only has to find a superset.
CREATE INDEX books_search_text_idx ON books USING gin (search_text gin_trgm_ops);
