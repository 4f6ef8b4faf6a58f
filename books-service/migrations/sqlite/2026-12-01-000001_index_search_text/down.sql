DROP TRIGGER books_search_update;
DROP TRIGGER books_search_delete;
DROP TRIGGER books_search_insert;
DROP TABLE books_search;
