use chrono::NaiveDateTime;
use database::AnyConnection;
use diesel::prelude::*;

use super::schema::books;
use crate::domain::{BookChanges, BookFields, Isbn, ListQuery, search_text};

/// A stored book, exactly as stored: values written under an earlier, laxer rule (an ISBN
/// that no longer parses) are kept and returned verbatim.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = books)]
pub struct Book {
    pub id: String,
    pub owner_id: String,
    pub title: String,
    pub author: String,
    pub publisher: Option<String>,
    pub isbn: Option<String>,
    pub price_cents: i64,
    pub published_year: Option<i32>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The columns a create writes.
#[derive(Insertable)]
#[diesel(table_name = books)]
struct Columns<'a> {
    title: &'a str,
    author: &'a str,
    publisher: Option<&'a str>,
    isbn: Option<&'a str>,
    price_cents: i64,
    published_year: Option<i32>,
    search_text: String,
    updated_at: NaiveDateTime,
}

impl<'a> Columns<'a> {
    fn new(fields: &'a BookFields, now: NaiveDateTime) -> Self {
        Self {
            title: &fields.title,
            author: &fields.author,
            publisher: fields.publisher.as_deref(),
            isbn: fields.isbn.as_ref().map(Isbn::as_str),
            price_cents: fields.price_cents,
            published_year: fields.published_year,
            search_text: fields.search_text(),
            updated_at: now,
        }
    }
}

/// Stores a new book and returns it as stored, built from what was written rather than read
/// back (`now` must be at a precision both backends keep: see [`stored_time`]).
pub fn insert(
    conn: &mut AnyConnection,
    id: &str,
    owner_id: &str,
    fields: &BookFields,
    now: NaiveDateTime,
) -> QueryResult<Book> {
    let values = (
        books::id.eq(id),
        books::owner_id.eq(owner_id),
        books::version.eq(1),
        books::created_at.eq(now),
        Columns::new(fields, now),
    );
    database::with_backend!(conn, |c| diesel::insert_into(books::table)
        .values(values)
        .execute(c))?;
    Ok(Book {
        id: id.to_owned(),
        owner_id: owner_id.to_owned(),
        title: fields.title.clone(),
        author: fields.author.clone(),
        publisher: fields.publisher.clone(),
        isbn: fields.isbn.as_ref().map(|isbn| isbn.as_str().to_owned()),
        price_cents: fields.price_cents,
        published_year: fields.published_year,
        version: 1,
        created_at: now,
        updated_at: now,
    })
}

/// The current time at the precision both backends store (PostgreSQL keeps microseconds), so
/// that a row built from what was written equals the row read back later.
pub fn stored_time() -> NaiveDateTime {
    chrono::SubsecRound::trunc_subsecs(chrono::Utc::now().naive_utc(), 6)
}

/// The book `id` if `owner_id` owns it.
pub fn find_owned(conn: &mut AnyConnection, id: &str, owner_id: &str) -> QueryResult<Option<Book>> {
    books::table
        .find(id)
        .filter(books::owner_id.eq(owner_id))
        .select(Book::as_select())
        .first(conn)
        .optional()
}

/// [`find_owned`], holding the row until the transaction ends, so that a read-modify-write
/// cannot interleave with another one. SQLite's write transactions (`BEGIN IMMEDIATE`) are
/// serialised already; PostgreSQL locks the row (`FOR UPDATE`).
pub fn find_owned_for_update(
    conn: &mut AnyConnection,
    id: &str,
    owner_id: &str,
) -> QueryResult<Option<Book>> {
    match conn {
        AnyConnection::Postgresql(pg) => books::table
            .find(id)
            .filter(books::owner_id.eq(owner_id))
            .select(Book::as_select())
            .for_update()
            .first(pg)
            .optional(),
        AnyConnection::Sqlite(_) => find_owned(conn, id, owner_id),
    }
}

/// The columns an update writes: only those of the changed fields (`None` is skipped, so a
/// column the update does not name keeps its stored value), and the search text when the title
/// or the author changes.
#[derive(AsChangeset)]
#[diesel(table_name = books)]
struct Changes<'a> {
    title: Option<&'a str>,
    author: Option<&'a str>,
    publisher: Option<Option<&'a str>>,
    isbn: Option<Option<&'a str>>,
    price_cents: Option<i64>,
    published_year: Option<Option<i32>>,
    search_text: Option<String>,
    updated_at: NaiveDateTime,
}

impl<'a> Changes<'a> {
    fn new(current: &Book, changes: &'a BookChanges, now: NaiveDateTime) -> Self {
        let search_text = (changes.title.is_some() || changes.author.is_some()).then(|| {
            search_text(
                changes.title.as_deref().unwrap_or(&current.title),
                changes.author.as_deref().unwrap_or(&current.author),
            )
        });
        Self {
            title: changes.title.as_deref(),
            author: changes.author.as_deref(),
            publisher: changes.publisher.as_ref().map(Option::as_deref),
            isbn: changes
                .isbn
                .as_ref()
                .map(|isbn| isbn.as_ref().map(Isbn::as_str)),
            price_cents: changes.price_cents,
            published_year: changes.published_year,
            search_text,
            updated_at: now,
        }
    }
}

/// Writes `changes` to `current` if the book is still at `current`'s version; returns the book
/// as now stored (built from `current` and what was written, not read back) if it was.
pub fn update_if_version(
    conn: &mut AnyConnection,
    current: &Book,
    changes: &BookChanges,
    now: NaiveDateTime,
) -> QueryResult<Option<Book>> {
    let updated = diesel::update(
        books::table
            .find(&current.id)
            .filter(books::version.eq(current.version)),
    )
    .set((
        Changes::new(current, changes, now),
        books::version.eq(current.version + 1),
    ))
    .execute(conn)?;
    Ok((updated == 1).then(|| current.changed(changes, now)))
}

impl Book {
    /// This book with `changes` applied at `now`: what [`update_if_version`] writes.
    fn changed(&self, changes: &BookChanges, now: NaiveDateTime) -> Self {
        let mut book = self.clone();
        if let Some(title) = &changes.title {
            book.title.clone_from(title);
        }
        if let Some(author) = &changes.author {
            book.author.clone_from(author);
        }
        if let Some(publisher) = &changes.publisher {
            book.publisher.clone_from(publisher);
        }
        if let Some(isbn) = &changes.isbn {
            book.isbn = isbn.as_ref().map(|isbn| isbn.as_str().to_owned());
        }
        if let Some(price_cents) = changes.price_cents {
            book.price_cents = price_cents;
        }
        if let Some(published_year) = changes.published_year {
            book.published_year = published_year;
        }
        book.version = self.version + 1;
        book.updated_at = now;
        book
    }
}

/// Deletes the book if it is still at `version`; returns whether it was.
pub fn delete_if_version(conn: &mut AnyConnection, id: &str, version: i64) -> QueryResult<bool> {
    let deleted =
        diesel::delete(books::table.find(id).filter(books::version.eq(version))).execute(conn)?;
    Ok(deleted == 1)
}

/// One page of `query` plus one more row, newest first (ids are UUID v7): the extra row tells
/// whether another page follows. Rows inserted meanwhile have greater ids, so they never shift
/// the rows after a cursor.
pub fn list(conn: &mut AnyConnection, query: &ListQuery) -> QueryResult<Vec<Book>> {
    let mut select = books::table
        .select(Book::as_select())
        .order(books::id.desc())
        .limit(query.limit + 1)
        .into_boxed();
    if let Some(owner) = &query.owner {
        select = select.filter(books::owner_id.eq(owner.clone()));
    }
    if let Some(author) = &query.author {
        select = select.filter(books::author.eq(author.clone()));
    }
    if let Some(pattern) = &query.search {
        select = select.filter(books::search_text.like(pattern.clone()).escape('\\'));
    }
    if let Some(after) = &query.after {
        select = select.filter(books::id.lt(after.last_id().to_owned()));
    }
    select.load(conn)
}
