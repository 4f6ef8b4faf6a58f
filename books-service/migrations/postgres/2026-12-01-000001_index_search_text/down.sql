-- The extension stays: other schemas of the database may use it.
DROP INDEX books_search_text_idx;
