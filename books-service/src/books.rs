//! The book operations: ownership, optimistic concurrency and listing.

use database::write_transaction;

use crate::caller::Caller;
use crate::db::books::{self, Book};
use crate::domain::{BookChanges, BookFields, Field, FieldInput, ListQuery};
use crate::error::{BooksError, FieldErrors};
use crate::state::AppState;

/// A page of books and the token of the next one.
pub struct Page {
    pub books: Vec<Book>,
    pub next: Option<grpc_conventions::PageToken>,
}

impl AppState {
    /// # Errors
    /// Invalid fields.
    pub async fn create_book(
        &self,
        caller: &Caller,
        input: FieldInput,
    ) -> Result<Book, BooksError> {
        let fields = BookFields::parse(&input)?;
        let owner = caller.user_id.clone();
        self.db
            .run(move |conn| -> Result<_, BooksError> {
                let id = uuid::Uuid::now_v7().to_string();
                Ok(books::insert(
                    conn,
                    &id,
                    &owner,
                    &fields,
                    books::stored_time(),
                )?)
            })
            .await
    }

    /// # Errors
    /// [`BooksError::NotFound`] when missing or not the caller's.
    pub async fn get_book(&self, caller: &Caller, id: &str) -> Result<Book, BooksError> {
        let id = parse_id(id)?;
        let owner = caller.user_id.clone();
        self.db
            .run(move |conn| -> Result<_, BooksError> { Ok(books::find_owned(conn, &id, &owner)?) })
            .await?
            .ok_or(BooksError::NotFound)
    }

    /// # Errors
    /// Invalid parameters; [`BooksError::PermissionDenied`] for `all` without the admin role.
    pub async fn list_books(
        &self,
        caller: &Caller,
        all: bool,
        request: ListRequest<'_>,
    ) -> Result<Page, BooksError> {
        if all && !caller.is_admin {
            return Err(BooksError::PermissionDenied);
        }
        let owner = (!all).then(|| caller.user_id.clone());
        let query = ListQuery::parse(
            owner,
            request.page_size,
            request.page_token,
            request.query,
            request.author,
        )?;
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let mut rows = self
            .db
            .run(move |conn| -> Result<_, BooksError> { Ok(books::list(conn, &query)?) })
            .await?;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|book| grpc_conventions::PageToken::after(&book.id))
        } else {
            None
        };
        Ok(Page { books: rows, next })
    }

    /// Takes over the `fields` of `change` (all of them when empty), if the book is the
    /// caller's and, when `expected_version` is non-zero, still at that version. Only the named
    /// fields are validated and written; the others keep their stored values verbatim.
    ///
    /// # Errors
    /// Invalid named fields or mask, [`BooksError::NotFound`], [`BooksError::StaleVersion`].
    pub async fn update_book(
        &self,
        caller: &Caller,
        id: &str,
        change: FieldInput,
        mask: &[String],
        expected_version: i64,
    ) -> Result<Book, BooksError> {
        let id = parse_id(id)?;
        let fields = parse_mask(mask)?;
        let owner = caller.user_id.clone();
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| -> Result<_, BooksError> {
                    // Locked until commit: concurrent unconditional updates queue here and
                    // each applies to the result of the one before, none lost.
                    let book = books::find_owned_for_update(conn, &id, &owner)?
                        .ok_or(BooksError::NotFound)?;
                    check_version(&book, expected_version)?;
                    let changes = BookChanges::parse(&change, &fields)?;
                    books::update_if_version(conn, &book, &changes, books::stored_time())?.ok_or(
                        BooksError::StaleVersion {
                            current: book.version + 1,
                        },
                    )
                })
            })
            .await
    }

    /// # Errors
    /// [`BooksError::NotFound`], [`BooksError::StaleVersion`].
    pub async fn delete_book(
        &self,
        caller: &Caller,
        id: &str,
        expected_version: i64,
    ) -> Result<(), BooksError> {
        let id = parse_id(id)?;
        let owner = caller.user_id.clone();
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| -> Result<_, BooksError> {
                    let book = books::find_owned_for_update(conn, &id, &owner)?
                        .ok_or(BooksError::NotFound)?;
                    check_version(&book, expected_version)?;
                    if books::delete_if_version(conn, &id, book.version)? {
                        Ok(())
                    } else {
                        Err(BooksError::StaleVersion {
                            current: book.version + 1,
                        })
                    }
                })
            })
            .await
    }
}

/// The raw listing parameters of a request.
pub struct ListRequest<'a> {
    pub page_size: i32,
    pub page_token: &'a str,
    pub query: &'a str,
    pub author: &'a str,
}

fn check_version(book: &Book, expected: i64) -> Result<(), BooksError> {
    if expected != 0 && expected != book.version {
        return Err(BooksError::StaleVersion {
            current: book.version,
        });
    }
    Ok(())
}

fn parse_id(id: &str) -> Result<String, BooksError> {
    uuid::Uuid::parse_str(id)
        .map(|uuid| uuid.hyphenated().to_string())
        .map_err(|_| FieldErrors::single("id", "must be a UUID").into())
}

fn parse_mask(paths: &[String]) -> Result<Vec<Field>, BooksError> {
    if paths.is_empty() {
        return Ok(Field::ALL.to_vec());
    }
    paths
        .iter()
        .map(|path| {
            Field::parse(path).ok_or_else(|| {
                FieldErrors::single("update_mask", format!("unknown field `{path}`")).into()
            })
        })
        .collect()
}
