-- Free-text search served by a trigram index: an FTS5 table over books.search_text, its content
-- read from books (nothing stored twice) and its rows keyed by books' rowid, kept in step by the
-- triggers below. books has no INTEGER PRIMARY KEY, so its rowid is stable only as long as
-- nothing copies the table row by row: VACUUM keeps rowids, but a migration that rebuilds books
-- must end with INSERT INTO books_search(books_search) VALUES ('rebuild').
CREATE VIRTUAL TABLE books_search USING fts5(
    search_text,
    content = 'books',
    content_rowid = 'rowid',
    tokenize = 'trigram',
    -- No ranking, so no per-row token counts.
    columnsize = 0
);

CREATE TRIGGER books_search_insert AFTER INSERT ON books BEGIN
    INSERT INTO books_search (rowid, search_text) VALUES (new.rowid, new.search_text);
END;

-- An external-content FTS table forgets a row by being told the values it indexed.
CREATE TRIGGER books_search_delete AFTER DELETE ON books BEGIN
    INSERT INTO books_search (books_search, rowid, search_text)
    VALUES ('delete', old.rowid, old.search_text);
END;

CREATE TRIGGER books_search_update AFTER UPDATE OF search_text ON books BEGIN
    INSERT INTO books_search (books_search, rowid, search_text)
    VALUES ('delete', old.rowid, old.search_text);
    INSERT INTO books_search (rowid, search_text) VALUES (new.rowid, new.search_text);
END;

-- The books stored before this migration.
INSERT INTO books_search (books_search) VALUES ('rebuild');
