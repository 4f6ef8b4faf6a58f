use chrono::NaiveDateTime;
use database::AnyConnection;
use diesel::dsl::{AsSelect, Desc, IntoBoxed, Limit, Order, Select, sql};
use diesel::prelude::*;
use diesel::sql_query;
use diesel::sql_types::{BigInt, Bool, Text};

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
///
/// A search with a word of three characters or more is served by the backend's trigram index:
/// PostgreSQL's planner weighs it against reading the newest books in order; on SQLite the FTS
/// index gives the candidates when few books contain every word, and the books are read in order
/// otherwise (a term in many books fills a page from the newest few). Either way the search's
/// pattern decides, so the index only narrows what is tested.
pub fn list(conn: &mut AnyConnection, query: &ListQuery) -> QueryResult<Vec<Book>> {
    let Some(words) = query
        .search
        .as_ref()
        .map(|search| &search.words)
        .filter(|words| !words.is_empty())
    else {
        return page(query, Candidates::Scan).load(conn);
    };
    if !matches!(conn, AnyConnection::Sqlite(_)) {
        return page(query, Candidates::TrigramWords).load(conn);
    }
    // One read transaction: the candidates and the page come from the same snapshot, so a book
    // written in between is either among both or in neither.
    conn.transaction(|conn| {
        let candidates = fts_candidates(conn, words)?;
        if candidates.len() > MAX_FTS_CANDIDATES {
            return page(query, Candidates::Scan).load(conn);
        }
        page(query, Candidates::Rowids(rowid_list(&candidates))).load(conn)
    })
}

/// Past this many books containing every word, fetching each candidate costs more than reading
/// the newest books in order until a page is full: at a million books, 1,000 matches fill a page
/// of 20 within the newest ~20,000 books.
const MAX_FTS_CANDIDATES: usize = 1_000;

/// How a page finds the books its search may match.
enum Candidates {
    /// Every book, in order.
    Scan,
    /// PostgreSQL's trigram index, looked up with each word.
    TrigramWords,
    /// These SQLite rowids, from the FTS index: a JSON array.
    Rowids(String),
}

type Backend = <AnyConnection as Connection>::Backend;
type Page<'a> = IntoBoxed<
    'a,
    Limit<Order<Select<books::table, AsSelect<Book, Backend>>, Desc<books::id>>>,
    Backend,
>;

fn page(query: &ListQuery, candidates: Candidates) -> Page<'_> {
    let mut select = books::table
        .select(Book::as_select())
        .order(books::id.desc())
        .limit(query.limit + 1)
        .into_boxed();
    if let Some(owner) = &query.owner {
        select = select.filter(books::owner_id.eq(owner));
    }
    if let Some(author) = &query.author {
        select = select.filter(books::author.eq(author));
    }
    if let Some(after) = &query.after {
        select = select.filter(books::id.lt(after.last_id()));
    }
    let Some(search) = &query.search else {
        return select;
    };
    match candidates {
        Candidates::Scan => select.filter(books::search_text.like(&search.pattern).escape('\\')),
        Candidates::TrigramWords => {
            let mut decided = false;
            for word in search.word_patterns() {
                // A one-word search: the word's condition is the search's.
                decided |= word == search.pattern;
                select = select.filter(books::search_text.like(word).escape('\\'));
            }
            if decided {
                return select;
            }
            // Kept out of the index condition (an expression, not the indexed column): the
            // trigrams that span its word boundaries are in most books, so looking them up
            // would cost more than they narrow. It is the same test, applied to each candidate.
            select.filter(
                books::search_text
                    .concat("")
                    .like(&search.pattern)
                    .escape('\\'),
            )
        }
        Candidates::Rowids(rowids) => select
            .filter(
                sql::<Bool>("books.rowid IN (SELECT value FROM json_each(")
                    .bind::<Text, _>(rowids)
                    .sql("))"),
            )
            .filter(books::search_text.like(&search.pattern).escape('\\')),
    }
}

#[derive(QueryableByName)]
struct Candidate {
    #[diesel(sql_type = BigInt)]
    rowid: i64,
}

/// Up to one more than [`MAX_FTS_CANDIDATES`] rowids of books whose search text contains every
/// word, possibly in other letter case (the trigram tokenizer folds it): a superset of the
/// matches.
fn fts_candidates(conn: &mut AnyConnection, words: &[String]) -> QueryResult<Vec<i64>> {
    // Each word a quoted FTS5 string (quotes doubled), which the trigram tokenizer turns into
    // the sequence of the word's trigrams.
    let query = words
        .iter()
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ");
    let rows: Vec<Candidate> = sql_query(format!(
        "SELECT rowid FROM books_search WHERE books_search MATCH ? LIMIT {}",
        MAX_FTS_CANDIDATES + 1
    ))
    .bind::<Text, _>(query)
    .load(conn)?;
    Ok(rows.into_iter().map(|row| row.rowid).collect())
}

fn rowid_list(rowids: &[i64]) -> String {
    let list: Vec<String> = rowids.iter().map(i64::to_string).collect();
    format!("[{}]", list.join(","))
}
