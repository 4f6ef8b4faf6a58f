//! `/api/books`: the caller's books, answered by books-service. Versions travel as strong
//! ETags (`"3"`); `If-Match` makes updates and deletes conditional (412 when stale).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use proto::books::v1 as pb;
use serde::{Deserialize, Deserializer, Serialize};
use tonic::Code;
use utoipa::{IntoParams, ToSchema};

use super::{BodyErrors, TokenErrors};
use super::{is_uuid, rfc3339};
use crate::error::{ApiError, Problem};
use crate::extract::Caller;
use crate::json_body::JsonBody;
use crate::state::AppState;

type State = web::Data<Arc<AppState>>;

/// A book.
#[derive(Debug, Serialize, ToSchema)]
pub struct Book {
    pub id: String,
    pub owner_id: String,
    pub title: String,
    pub author: String,
    pub publisher: Option<String>,
    /// 13 digits.
    pub isbn: Option<String>,
    pub price_cents: i64,
    pub published_year: Option<i32>,
    /// Incremented by every change; also the ETag.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<pb::Book> for Book {
    fn from(book: pb::Book) -> Self {
        Self {
            created_at: rfc3339(book.created_at.as_ref()),
            updated_at: rfc3339(book.updated_at.as_ref()),
            id: book.id,
            owner_id: book.owner_id,
            title: book.title,
            author: book.author,
            publisher: book.publisher,
            isbn: book.isbn,
            price_cents: book.price_cents,
            published_year: book.published_year,
            version: book.version,
        }
    }
}

/// A whole book, for creating or replacing one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookInput {
    /// 1–300 characters after trimming, no control characters.
    #[schema(
        min_length = 1,
        max_length = 300,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub title: String,
    /// 1–300 characters after trimming, no control characters.
    #[schema(
        min_length = 1,
        max_length = 300,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub author: String,
    /// At most 300 characters, no control characters; blank means none.
    #[schema(max_length = 300, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub publisher: Option<String>,
    /// ISBN-10 or ISBN-13 with a valid check digit; hyphens and spaces allowed.
    #[schema(max_length = 20, pattern = r"^[0-9Xx \-]*$")]
    pub isbn: Option<String>,
    /// 0 when absent.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100_000_000_000_i64)]
    pub price_cents: i64,
    /// 1450 to next year.
    #[schema(minimum = 1450)]
    pub published_year: Option<i32>,
}

/// Some fields of a book (JSON merge patch): absent fields stay, `null` clears an optional one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookPatch {
    /// Cannot be cleared.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 300, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    pub title: Option<Option<String>>,
    /// Cannot be cleared.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 300, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    pub author: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 300, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub publisher: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 20, pattern = r"^[0-9Xx \-]*$")]
    pub isbn: Option<Option<String>>,
    /// `null` sets 0.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 100_000_000_000_i64)]
    pub price_cents: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i32>, minimum = 1450)]
    pub published_year: Option<Option<i32>>,
}

/// Tells a field sent as `null` (`Some(None)`) from an absent one (`None`, via `default`).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BookListQuery {
    /// 20 when absent.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Text to find in titles and authors, ignoring case.
    #[param(max_length = 300)]
    pub q: Option<String>,
    /// Exact author.
    #[param(max_length = 300)]
    pub author: Option<String>,
    /// Every user's books (admins only).
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BookList {
    pub books: Vec<Book>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The page size for a `limit` query parameter: 20 when absent, 1–100 otherwise (never
/// clamped: out of range is a 422).
///
/// # Errors
/// A `limit` violation.
pub fn page_size(limit: Option<i64>) -> Result<i32, ApiError> {
    match limit {
        None => Ok(20),
        Some(limit @ 1..=100) => Ok(i32::try_from(limit).unwrap_or(20)),
        Some(_) => Err(ApiError::invalid_field(
            "limit",
            "must be between 1 and 100",
        )),
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such book".to_owned())
}

/// A path id that cannot name a book is simply not found.
fn book_id(id: web::Path<String>) -> Result<String, ApiError> {
    let id = id.into_inner();
    if is_uuid(&id) {
        Ok(id)
    } else {
        Err(not_found())
    }
}

/// The version `If-Match` requires, 0 for none or `*`.
fn expected_version(request: &HttpRequest) -> Result<i64, ApiError> {
    let Some(value) = request.headers().get(header::IF_MATCH) else {
        return Ok(0);
    };
    let malformed =
        || ApiError::BadRequest("If-Match must be `*` or one ETag such as \"3\"".to_owned());
    let value = value.to_str().map_err(|_| malformed())?.trim();
    if value == "*" {
        return Ok(0);
    }
    if value.starts_with("W/") {
        // If-Match compares strongly: a weak tag never matches.
        return Err(ApiError::PreconditionFailed(
            "If-Match needs a strong ETag".to_owned(),
        ));
    }
    value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .and_then(|version| version.parse::<i64>().ok())
        .filter(|version| *version > 0)
        .ok_or_else(malformed)
}

/// A book with its ETag.
fn with_etag(status: StatusCode, book: pb::Book) -> HttpResponse {
    let etag = format!("\"{}\"", book.version);
    let mut response = HttpResponse::build(status);
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.insert_header((header::ETAG, value));
    }
    if status == StatusCode::CREATED {
        response.insert_header((header::LOCATION, format!("/api/books/{}", book.id)));
    }
    response.json(Book::from(book))
}

/// books-service's FAILED_PRECONDITION is a stale version: 412 here.
fn stale_is_412<T>(
    state: &AppState,
    result: Result<tonic::Response<T>, tonic::Status>,
) -> Result<T, ApiError> {
    match result {
        Err(status) if status.code() == Code::FailedPrecondition => {
            Err(ApiError::PreconditionFailed(status.message().to_owned()))
        }
        other => state.answer("books", other),
    }
}

/// The caller's books, newest first, a page at a time.
#[utoipa::path(
    tag = "books",
    params(BookListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of books", body = BookList),
        (status = 403, description = "`all` without the admin role", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit, cursor or filter", body = Problem, content_type = "application/problem+json"),
        TokenErrors,
    )
)]
#[get("/api/books")]
pub async fn list_books(
    state: State,
    caller: Caller,
    query: web::Query<BookListQuery>,
) -> Result<web::Json<BookList>, ApiError> {
    let query = query.into_inner();
    let call = caller.call().request(pb::ListBooksRequest {
        page_size: page_size(query.limit)?,
        page_token: query.cursor.unwrap_or_default(),
        query: query.q.unwrap_or_default(),
        author: query.author.unwrap_or_default(),
        all: query.all,
    });
    let page = state.answer(
        "books",
        state.upstreams.books.clone().list_books(call).await,
    )?;
    Ok(web::Json(BookList {
        books: page.books.into_iter().map(Book::from).collect(),
        next_cursor: Some(page.next_page_token).filter(|token| !token.is_empty()),
    }))
}

/// Add a book.
#[utoipa::path(
    tag = "books",
    request_body = BookInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; `Location` names it, `ETag` is its version", body = Book),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        TokenErrors,
        BodyErrors,
    )
)]
#[post("/api/books")]
pub async fn create_book(
    state: State,
    caller: Caller,
    body: JsonBody<BookInput>,
) -> Result<HttpResponse, ApiError> {
    let book = whole_book(String::new(), body.into_inner());
    let call = caller
        .call()
        .request(pb::CreateBookRequest { book: Some(book) });
    let created = state.answer(
        "books",
        state.upstreams.books.clone().create_book(call).await,
    )?;
    Ok(with_etag(StatusCode::CREATED, created))
}

/// One of the caller's books.
#[utoipa::path(
    tag = "books",
    params(("id" = String, Path, description = "Book id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The book; `ETag` is its version", body = Book),
        (status = 404, description = "Missing, or not the caller's", body = Problem, content_type = "application/problem+json"),
        TokenErrors,
    )
)]
#[get("/api/books/{id}")]
pub async fn get_book(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = book_id(id)?;
    let call = caller.call().request(pb::GetBookRequest { id });
    let book = state.answer("books", state.upstreams.books.clone().get_book(call).await)?;
    Ok(with_etag(StatusCode::OK, book))
}

/// Replace a book's fields (absent optional fields are cleared).
#[utoipa::path(
    tag = "books",
    params(
        ("id" = String, Path, description = "Book id"),
        ("If-Match" = Option<String>, Header, description = "ETag the book must still have"),
    ),
    request_body = BookInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The book as changed", body = Book),
        (status = 400, description = "Malformed JSON or If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Missing, or not the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The book changed since that ETag; nothing was written", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        TokenErrors,
    )
)]
#[put("/api/books/{id}")]
pub async fn replace_book(
    state: State,
    caller: Caller,
    request: HttpRequest,
    id: web::Path<String>,
    body: JsonBody<BookInput>,
) -> Result<HttpResponse, ApiError> {
    let id = book_id(id)?;
    let expected_version = expected_version(&request)?;
    let call = caller.call().request(pb::UpdateBookRequest {
        book: Some(whole_book(id, body.into_inner())),
        update_mask: None,
        expected_version,
    });
    let book = stale_is_412(
        &state,
        state.upstreams.books.clone().update_book(call).await,
    )?;
    Ok(with_etag(StatusCode::OK, book))
}

/// Change some of a book's fields (JSON merge patch).
#[utoipa::path(
    tag = "books",
    params(
        ("id" = String, Path, description = "Book id"),
        ("If-Match" = Option<String>, Header, description = "ETag the book must still have"),
    ),
    request_body(content = BookPatch, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The book as changed", body = Book),
        (status = 400, description = "Malformed JSON or If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Missing, or not the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The book changed since that ETag; nothing was written", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        TokenErrors,
    )
)]
#[patch("/api/books/{id}")]
pub async fn patch_book(
    state: State,
    caller: Caller,
    request: HttpRequest,
    id: web::Path<String>,
    body: JsonBody<BookPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = book_id(id)?;
    let expected_version = expected_version(&request)?;
    let patch = body.into_inner();
    let mut paths = Vec::new();
    let mut mark = |name: &str, present: bool| {
        if present {
            paths.push(name.to_owned());
        }
    };
    mark("title", patch.title.is_some());
    mark("author", patch.author.is_some());
    mark("publisher", patch.publisher.is_some());
    mark("isbn", patch.isbn.is_some());
    mark("price_cents", patch.price_cents.is_some());
    mark("published_year", patch.published_year.is_some());
    if paths.is_empty() {
        return Err(ApiError::Validation {
            detail: "name at least one field to change".to_owned(),
            errors: Default::default(),
        });
    }
    let book = pb::Book {
        id,
        title: patch.title.flatten().unwrap_or_default(),
        author: patch.author.flatten().unwrap_or_default(),
        publisher: patch.publisher.flatten(),
        isbn: patch.isbn.flatten(),
        price_cents: patch.price_cents.flatten().unwrap_or_default(),
        published_year: patch.published_year.flatten(),
        ..pb::Book::default()
    };
    let call = caller.call().request(pb::UpdateBookRequest {
        book: Some(book),
        update_mask: Some(prost_types::FieldMask { paths }),
        expected_version,
    });
    let book = stale_is_412(
        &state,
        state.upstreams.books.clone().update_book(call).await,
    )?;
    Ok(with_etag(StatusCode::OK, book))
}

/// Delete one of the caller's books.
#[utoipa::path(
    tag = "books",
    params(
        ("id" = String, Path, description = "Book id"),
        ("If-Match" = Option<String>, Header, description = "ETag the book must still have"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Missing, or not the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The book changed since that ETag; nothing was deleted", body = Problem, content_type = "application/problem+json"),
        TokenErrors,
    )
)]
#[delete("/api/books/{id}")]
pub async fn delete_book(
    state: State,
    caller: Caller,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = book_id(id)?;
    let expected_version = expected_version(&request)?;
    let call = caller.call().request(pb::DeleteBookRequest {
        id,
        expected_version,
    });
    stale_is_412(
        &state,
        state.upstreams.books.clone().delete_book(call).await,
    )?;
    Ok(HttpResponse::NoContent().finish())
}

fn whole_book(id: String, input: BookInput) -> pb::Book {
    pb::Book {
        id,
        title: input.title,
        author: input.author,
        publisher: input.publisher,
        isbn: input.isbn,
        price_cents: input.price_cents,
        published_year: input.published_year,
        ..pb::Book::default()
    }
}
