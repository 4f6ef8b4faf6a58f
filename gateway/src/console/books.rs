//! The visitor's books: the list (search, author filter, pages), adding, editing with a
//! visible conflict when someone else changed the book meanwhile, and deleting.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use proto::books::v1 as pb;
use serde::{Deserialize, Serialize};
use tonic::Code;

use super::pages::{
    BookFormPage, BookRow, BookValues, BooksPage, ConflictPage, DeletePage, Difference,
    FieldErrors, render,
};
use super::visit::{Failure, Reply, SignedIn, Visit};
use crate::error::ApiError;
use crate::routes::is_uuid;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    q: String,
    author: String,
    cursor: String,
    /// The cursors of the pages before this one, comma-separated (the first page's is empty):
    /// what "previous" goes back to, since the listing only pages forwards.
    trail: Option<String>,
    notice: Option<String>,
}

/// The link to a page of the list.
#[derive(Serialize)]
struct ListLink<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    q: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    author: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    cursor: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trail: Option<String>,
}

impl ListLink<'_> {
    fn url(&self) -> String {
        match serde_urlencoded::to_string(self) {
            Ok(query) if !query.is_empty() => format!("/ui/books?{query}"),
            _ => "/ui/books".to_owned(),
        }
    }
}

/// The links to the pages before and after `query`'s, given the cursor of the next one.
pub fn neighbours(
    base: &str,
    filters: &[(&str, &str)],
    cursor: &str,
    trail: Option<&str>,
    next_cursor: &str,
) -> (Option<String>, Option<String>) {
    let link = |cursor: &str, trail: Option<String>| {
        let mut pairs: Vec<(&str, String)> = filters
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| (*name, (*value).to_owned()))
            .collect();
        if !cursor.is_empty() {
            pairs.push(("cursor", cursor.to_owned()));
        }
        if let Some(trail) = trail {
            pairs.push(("trail", trail));
        }
        match serde_urlencoded::to_string(&pairs) {
            Ok(query) if !query.is_empty() => format!("{base}?{query}"),
            _ => base.to_owned(),
        }
    };
    let before: Vec<&str> = trail.map(|t| t.split(',').collect()).unwrap_or_default();
    let previous = before.split_last().map(|(last, rest)| {
        let rest = (!rest.is_empty()).then(|| rest.join(","));
        link(last, rest)
    });
    let next = (!next_cursor.is_empty()).then(|| {
        let mut trail = before.clone();
        trail.push(cursor);
        link(next_cursor, Some(trail.join(",")))
    });
    (previous, next)
}

/// What a notice code in the list's query says (after a redirect, so that a reload does not
/// repeat the change).
fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "created" => Some("The book was added."),
        "saved" => Some("The book was saved."),
        "deleted" => Some("The book was deleted."),
        _ => None,
    }
}

pub async fn list(mut visit: Visit, query: web::Query<ListQuery>) -> HttpResponse {
    let outcome = list_page(&mut visit, query.into_inner()).await;
    visit.finish(outcome)
}

async fn list_page(visit: &mut Visit, query: ListQuery) -> Result<Reply, Failure> {
    let user = visit.user().await?;
    let request = pb::ListBooksRequest {
        page_size: i32::try_from(visit.state.console.page_size).unwrap_or(10),
        page_token: query.cursor.clone(),
        query: query.q.clone(),
        author: query.author.clone(),
        all: false,
    };
    let answer = visit
        .state
        .upstreams
        .books
        .clone()
        .list_books(visit.call(&user).request(request))
        .await;
    let page = visit
        .state
        .answer("books", answer)
        .map_err(|error| match error {
            // A page link from before (a cursor that no longer decodes): start again.
            ApiError::Validation { .. } if !query.cursor.is_empty() => ApiError::Validation {
                detail: "this page link is no longer valid; start again from the first page"
                    .to_owned(),
                errors: Default::default(),
            },
            other => other,
        })?;
    let (previous, next) = neighbours(
        "/ui/books",
        &[("q", &query.q), ("author", &query.author)],
        &query.cursor,
        query.trail.as_deref(),
        &page.next_page_token,
    );
    let view = BooksPage {
        nav: visit.nav(&user, "books"),
        books: page.books.into_iter().map(BookRow::from).collect(),
        q: query.q,
        author: query.author,
        previous,
        next,
        notice: notice(query.notice.as_deref()),
    };
    Ok(Reply::page(render(&view)))
}

fn list_with_notice(code: &str) -> Reply {
    let link = ListLink {
        q: "",
        author: "",
        cursor: "",
        trail: None,
    };
    Reply::Redirect(format!("{}?notice={code}", link.url()))
}

pub async fn new(mut visit: Visit) -> HttpResponse {
    let outcome = async {
        let user = visit.user().await?;
        Ok::<_, Failure>(form_page(
            &visit,
            &user,
            StatusCode::OK,
            "Add a book",
            "/ui/books".to_owned(),
            &BookValues::default(),
            None,
            FieldErrors::default(),
        ))
    }
    .await;
    visit.finish(outcome)
}

#[allow(clippy::too_many_arguments)] // one page, many parts; a struct would only rename them
fn form_page(
    visit: &Visit,
    user: &SignedIn,
    status: StatusCode,
    heading: &str,
    action: String,
    book: &BookValues,
    version: Option<i64>,
    errors: FieldErrors,
) -> Reply {
    let page = BookFormPage {
        nav: visit.nav(user, "books"),
        csrf: &visit.csrf,
        heading,
        action,
        book,
        version,
        errors,
    };
    Reply::Page(status, render(&page))
}

/// A book form as posted.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BookForm {
    csrf: String,
    /// The version an edit or a deletion is based on.
    version: Option<i64>,
    #[serde(flatten)]
    values: BookValues,
}

/// The form's values as a book, or the fields whose text is not a number.
fn book_of(id: String, values: &BookValues) -> Result<pb::Book, FieldErrors> {
    let optional = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    let price_cents = match values.price_cents.trim() {
        "" => Ok(0),
        text => text.parse::<i64>().map_err(|_| "price_cents"),
    };
    let published_year = match values.published_year.trim() {
        "" => Ok(None),
        text => text.parse::<i32>().map(Some).map_err(|_| "published_year"),
    };
    match (price_cents, published_year) {
        (Ok(price_cents), Ok(published_year)) => Ok(pb::Book {
            id,
            title: values.title.clone(),
            author: values.author.clone(),
            publisher: optional(&values.publisher),
            isbn: optional(&values.isbn),
            price_cents,
            published_year,
            ..pb::Book::default()
        }),
        (Err(field), _) | (_, Err(field)) => Err(FieldErrors::one(field, "must be a whole number")),
    }
}

pub async fn create(mut visit: Visit, form: web::Form<BookForm>) -> HttpResponse {
    let outcome = create_with(&mut visit, form.into_inner()).await;
    visit.finish(outcome)
}

async fn create_with(visit: &mut Visit, form: BookForm) -> Result<Reply, Failure> {
    visit.check_form(&form.csrf)?;
    let user = visit.user().await?;
    let refused = |visit: &Visit, errors| {
        form_page(
            visit,
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Add a book",
            "/ui/books".to_owned(),
            &form.values,
            None,
            errors,
        )
    };
    let book = match book_of(String::new(), &form.values) {
        Ok(book) => book,
        Err(errors) => return Ok(refused(visit, errors)),
    };
    let request = visit
        .call(&user)
        .request(pb::CreateBookRequest { book: Some(book) });
    let answer = visit
        .state
        .upstreams
        .books
        .clone()
        .create_book(request)
        .await;
    match visit.state.answer("books", answer) {
        Ok(_) => Ok(list_with_notice("created")),
        Err(ApiError::Validation { errors, .. }) => Ok(refused(visit, FieldErrors::new(errors))),
        Err(other) => Err(other.into()),
    }
}

/// The caller's book `id`, or the 404 page (also for ids that are not UUIDs: they name nothing).
async fn fetch(visit: &Visit, user: &SignedIn, id: &str) -> Result<pb::Book, Failure> {
    if !is_uuid(id) {
        return Err(ApiError::NotFound("no such book".to_owned()).into());
    }
    let request = visit
        .call(user)
        .request(pb::GetBookRequest { id: id.to_owned() });
    let answer = visit.state.upstreams.books.clone().get_book(request).await;
    Ok(visit.state.answer("books", answer)?)
}

pub async fn edit(mut visit: Visit, id: web::Path<String>) -> HttpResponse {
    let outcome = async {
        let user = visit.user().await?;
        let book = fetch(&visit, &user, &id).await?;
        Ok::<_, Failure>(form_page(
            &visit,
            &user,
            StatusCode::OK,
            "Edit the book",
            format!("/ui/books/{}", book.id),
            &BookValues::from(&book),
            Some(book.version),
            FieldErrors::default(),
        ))
    }
    .await;
    visit.finish(outcome)
}

pub async fn update(
    mut visit: Visit,
    id: web::Path<String>,
    form: web::Form<BookForm>,
) -> HttpResponse {
    let outcome = update_with(&mut visit, &id, form.into_inner()).await;
    visit.finish(outcome)
}

async fn update_with(visit: &mut Visit, id: &str, form: BookForm) -> Result<Reply, Failure> {
    visit.check_form(&form.csrf)?;
    let user = visit.user().await?;
    let refused = |visit: &Visit, errors| {
        form_page(
            visit,
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Edit the book",
            format!("/ui/books/{id}"),
            &form.values,
            form.version,
            errors,
        )
    };
    if !is_uuid(id) {
        return Err(ApiError::NotFound("no such book".to_owned()).into());
    }
    let book = match book_of(id.to_owned(), &form.values) {
        Ok(book) => book,
        Err(errors) => return Ok(refused(visit, errors)),
    };
    let request = visit.call(&user).request(pb::UpdateBookRequest {
        book: Some(book),
        // Every field: the form shows them all.
        update_mask: None,
        // Without a version (a form from elsewhere) the change could silently undo another.
        expected_version: form.version.unwrap_or(-1),
    });
    let answer = visit
        .state
        .upstreams
        .books
        .clone()
        .update_book(request)
        .await;
    match answer {
        Ok(_) => Ok(list_with_notice("saved")),
        Err(status) if status.code() == Code::FailedPrecondition => {
            let current = fetch(visit, &user, id).await?;
            let current_values = BookValues::from(&current);
            let rows = form
                .values
                .labelled()
                .into_iter()
                .zip(current_values.labelled())
                .map(|((label, mine), (_, now))| Difference {
                    label,
                    mine,
                    current: now,
                })
                .collect::<Vec<_>>();
            let page = ConflictPage {
                nav: visit.nav(&user, "books"),
                csrf: &visit.csrf,
                id,
                mine: &form.values,
                rows,
                current_version: current.version,
            };
            Ok(Reply::Page(StatusCode::CONFLICT, render(&page)))
        }
        Err(status) => match visit.state.refusal("books", status) {
            ApiError::Validation { errors, .. } => Ok(refused(visit, FieldErrors::new(errors))),
            other => Err(other.into()),
        },
    }
}

pub async fn confirm_delete(mut visit: Visit, id: web::Path<String>) -> HttpResponse {
    let outcome = async {
        let user = visit.user().await?;
        let book = fetch(&visit, &user, &id).await?;
        let page = DeletePage {
            nav: visit.nav(&user, "books"),
            csrf: &visit.csrf,
            book: BookRow::from(book),
        };
        Ok::<_, Failure>(Reply::page(render(&page)))
    }
    .await;
    visit.finish(outcome)
}

pub async fn delete(
    mut visit: Visit,
    id: web::Path<String>,
    form: web::Form<BookForm>,
) -> HttpResponse {
    let outcome = async {
        visit.check_form(&form.csrf)?;
        let user = visit.user().await?;
        if !is_uuid(&id) {
            return Err(ApiError::NotFound("no such book".to_owned()).into());
        }
        let request = visit.call(&user).request(pb::DeleteBookRequest {
            id: id.to_string(),
            expected_version: form.version.unwrap_or(-1),
        });
        let answer = visit
            .state
            .upstreams
            .books
            .clone()
            .delete_book(request)
            .await;
        match answer {
            Ok(_) => Ok(list_with_notice("deleted")),
            // Changed since the confirmation was shown: show it again, as it is now.
            Err(status) if status.code() == Code::FailedPrecondition => {
                Ok(Reply::Redirect(format!("/ui/books/{id}/delete")))
            }
            Err(status) => Err::<Reply, Failure>(visit.state.refusal("books", status).into()),
        }
    }
    .await;
    visit.finish(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_and_next_walk_the_trail_of_cursors() {
        let filters = [("q", "dune"), ("author", "")];
        let (previous, next) = neighbours("/ui/books", &filters, "", None, "c1");
        assert_eq!(previous, None);
        assert_eq!(next.as_deref(), Some("/ui/books?q=dune&cursor=c1&trail="));

        let (previous, next) = neighbours("/ui/books", &filters, "c1", Some(""), "c2");
        assert_eq!(previous.as_deref(), Some("/ui/books?q=dune"));
        assert_eq!(
            next.as_deref(),
            Some("/ui/books?q=dune&cursor=c2&trail=%2Cc1")
        );

        let (previous, next) = neighbours("/ui/books", &filters, "c2", Some(",c1"), "");
        assert_eq!(
            previous.as_deref(),
            Some("/ui/books?q=dune&cursor=c1&trail=")
        );
        assert_eq!(next, None);
    }

    #[test]
    fn a_price_or_year_that_is_no_number_is_a_field_error() {
        let values = BookValues {
            title: "Dune".into(),
            author: "Frank Herbert".into(),
            price_cents: "9.99".into(),
            ..BookValues::default()
        };
        let errors = book_of(String::new(), &values).unwrap_err();
        assert!(errors.get("price_cents").is_some());
        let fine = BookValues {
            price_cents: " 999 ".into(),
            ..values
        };
        assert_eq!(book_of(String::new(), &fine).unwrap().price_cents, 999);
    }
}
