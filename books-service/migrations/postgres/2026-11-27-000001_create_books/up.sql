-- Portable types only (TEXT ids, TIMESTAMP in UTC, BIGINT), mirrored by the SQLite tree.

CREATE TABLE books (
    -- UUID v7: its text order is creation order, which keyset pagination relies on.
    id             TEXT PRIMARY KEY,
    owner_id       TEXT NOT NULL,
    title          TEXT NOT NULL,
    author         TEXT NOT NULL,
    publisher      TEXT,
    -- 13 digits.
    isbn           TEXT,
    price_cents    BIGINT NOT NULL,
    published_year INTEGER,
    -- Lower-cased title and author: what free-text search scans.
    search_text    TEXT NOT NULL,
    version        BIGINT NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);
-- A user's books newest first, and the pages after a cursor.
CREATE INDEX books_owner_id_idx ON books (owner_id, id);
-- A user's books by one author.
CREATE INDEX books_owner_author_idx ON books (owner_id, author, id);
-- Every user's books by one author (admins).
CREATE INDEX books_author_idx ON books (author, id);
