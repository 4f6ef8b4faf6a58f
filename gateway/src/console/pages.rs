//! The console's pages: one askama template each (`gateway/templates/`, compiled into the
//! binary and HTML-escaped), and the view models they show. Nothing here calls a service.

use std::collections::BTreeMap;

use askama::Template;
use proto::auth::v1 as auth;
use proto::books::v1 as books;

/// The header's navigation, for a signed-in visitor.
pub struct Nav {
    pub csrf: String,
    pub is_admin: bool,
    /// Which entry is the current page: `books`, `sessions`, `password` or `users`.
    pub current: &'static str,
}

/// Messages by form field, shown beside the field they are about.
#[derive(Debug, Default)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn new(errors: BTreeMap<String, Vec<String>>) -> Self {
        Self(errors)
    }

    pub fn one(field: &str, message: &str) -> Self {
        Self(BTreeMap::from([(
            field.to_owned(),
            vec![message.to_owned()],
        )]))
    }

    /// The messages about `field`, as one sentence.
    pub fn get(&self, field: &str) -> Option<String> {
        self.0.get(field).map(|messages| {
            let text = messages.join("; ");
            let mut chars = text.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>() + ".")
                .unwrap_or_default()
        })
    }

    /// Messages about fields the form does not show.
    pub fn others(&self, shown: &[&str]) -> Vec<String> {
        self.0
            .iter()
            .filter(|(field, _)| !shown.contains(&field.as_str()))
            .flat_map(|(field, messages)| messages.iter().map(move |m| format!("{field}: {m}")))
            .collect()
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage<'a> {
    pub nav: Option<Nav>,
    pub csrf: &'a str,
    pub next: &'a str,
    pub username: &'a str,
    pub error: Option<String>,
    pub notice: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "register.html")]
pub struct RegisterPage<'a> {
    pub nav: Option<Nav>,
    pub csrf: &'a str,
    pub username: &'a str,
    pub email: &'a str,
    pub errors: FieldErrors,
}

/// A book as the list shows it.
pub struct BookRow {
    pub id: String,
    pub title: String,
    pub author: String,
    pub publisher: String,
    pub isbn: String,
    pub price: String,
    pub published_year: String,
    pub version: i64,
}

impl From<books::Book> for BookRow {
    fn from(book: books::Book) -> Self {
        Self {
            price: price(book.price_cents),
            published_year: book
                .published_year
                .map(|y| y.to_string())
                .unwrap_or_default(),
            publisher: book.publisher.unwrap_or_default(),
            isbn: book.isbn.unwrap_or_default(),
            id: book.id,
            title: book.title,
            author: book.author,
            version: book.version,
        }
    }
}

/// `999` → `9.99`.
pub fn price(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}

#[derive(Template)]
#[template(path = "books.html")]
pub struct BooksPage {
    pub nav: Option<Nav>,
    pub q: String,
    pub author: String,
    pub books: Vec<BookRow>,
    /// Links to the neighbouring pages.
    pub previous: Option<String>,
    pub next: Option<String>,
    pub notice: Option<&'static str>,
}

/// A book's fields as a form holds them: what the visitor typed, valid or not.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct BookValues {
    pub title: String,
    pub author: String,
    pub publisher: String,
    pub isbn: String,
    pub price_cents: String,
    pub published_year: String,
}

impl From<&books::Book> for BookValues {
    fn from(book: &books::Book) -> Self {
        Self {
            title: book.title.clone(),
            author: book.author.clone(),
            publisher: book.publisher.clone().unwrap_or_default(),
            isbn: book.isbn.clone().unwrap_or_default(),
            price_cents: book.price_cents.to_string(),
            published_year: book
                .published_year
                .map(|y| y.to_string())
                .unwrap_or_default(),
        }
    }
}

impl BookValues {
    /// The labelled values, in form order, for pages that show two versions side by side.
    pub fn labelled(&self) -> [(&'static str, &str); 6] {
        [
            ("Title", &self.title),
            ("Author", &self.author),
            ("Publisher", &self.publisher),
            ("ISBN", &self.isbn),
            ("Price in cents", &self.price_cents),
            ("Year published", &self.published_year),
        ]
    }
}

#[derive(Template)]
#[template(path = "book_form.html")]
pub struct BookFormPage<'a> {
    pub nav: Option<Nav>,
    pub csrf: &'a str,
    pub heading: &'a str,
    pub action: String,
    pub book: &'a BookValues,
    /// The version an edit is based on.
    pub version: Option<i64>,
    pub errors: FieldErrors,
}

/// One field of two versions of a book.
pub struct Difference<'a> {
    pub label: &'static str,
    pub mine: &'a str,
    pub current: &'a str,
}

#[derive(Template)]
#[template(path = "book_conflict.html")]
pub struct ConflictPage<'a> {
    pub nav: Option<Nav>,
    pub csrf: &'a str,
    pub id: &'a str,
    pub mine: &'a BookValues,
    pub rows: Vec<Difference<'a>>,
    pub current_version: i64,
}

#[derive(Template)]
#[template(path = "book_delete.html")]
pub struct DeletePage<'a> {
    pub nav: Option<Nav>,
    pub csrf: &'a str,
    pub book: BookRow,
}

/// A session as the sessions page shows it.
pub struct SessionRow {
    pub id: String,
    /// "Chrome on Linux", from the user agent.
    pub device: String,
    pub user_agent: String,
    pub address: String,
    pub created: String,
    pub last_used: String,
    pub current: bool,
}

impl From<auth::Session> for SessionRow {
    fn from(session: auth::Session) -> Self {
        Self {
            device: device(&session.user_agent),
            user_agent: session.user_agent,
            address: session.ip,
            created: when(session.created_at.as_ref()),
            last_used: when(session.last_used_at.as_ref()),
            current: session.current,
            id: session.id,
        }
    }
}

#[derive(Template)]
#[template(path = "sessions.html")]
pub struct SessionsPage<'a> {
    pub nav: Option<Nav>,
    pub csrf: &'a str,
    pub sessions: Vec<SessionRow>,
    pub notice: Option<&'a str>,
}

impl SessionsPage<'_> {
    pub fn others(&self) -> usize {
        self.sessions.iter().filter(|s| !s.current).count()
    }
}

#[derive(Template)]
#[template(path = "password.html")]
pub struct PasswordPage<'a> {
    pub nav: Option<Nav>,
    pub csrf: &'a str,
    pub errors: FieldErrors,
    pub changed: bool,
}

/// An account as the users page shows it.
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub email: String,
    pub is_admin: bool,
    pub is_active: bool,
    pub created: String,
    /// The admin looking at the page: it may not deactivate or demote itself.
    pub is_self: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
pub struct UsersPage<'a> {
    pub nav: Option<Nav>,
    pub csrf: &'a str,
    pub users: Vec<UserRow>,
    pub previous: Option<String>,
    pub next: Option<String>,
    /// This page, to come back to after a change.
    pub here: &'a str,
    pub notice: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    /// The header's links, for someone signed in.
    pub nav: Option<Nav>,
    pub title: &'a str,
    pub message: &'a str,
    pub status: u16,
    pub request_id: String,
    /// Whether trying again later may work (429, 503).
    pub retry: bool,
}

/// A user agent as people name their devices: the browser and the system, when they are ones
/// people know ("Firefox on Windows"); the raw text stays beside it.
pub fn device(user_agent: &str) -> String {
    let has = |needle: &str| user_agent.contains(needle);
    // Order matters: Edge and Chrome also say Safari; Chrome on Android also says Linux.
    let browser = if has("Edg/") {
        "Edge"
    } else if has("Firefox/") {
        "Firefox"
    } else if has("Chrome/") || has("Chromium/") {
        "Chrome"
    } else if has("Safari/") {
        "Safari"
    } else if has("curl/") {
        "curl"
    } else {
        ""
    };
    let system = if has("Android") {
        "Android"
    } else if has("iPhone") || has("iPad") {
        "iOS"
    } else if has("Windows") {
        "Windows"
    } else if has("Mac OS X") || has("Macintosh") {
        "macOS"
    } else if has("Linux") {
        "Linux"
    } else {
        ""
    };
    match (browser, system) {
        ("", "") if user_agent.is_empty() => "Unknown device".to_owned(),
        ("", "") => "Other device".to_owned(),
        (browser, "") => browser.to_owned(),
        ("", system) => format!("A browser on {system}"),
        (browser, system) => format!("{browser} on {system}"),
    }
}

/// A timestamp for people: `2026-12-01 14:03 UTC`.
pub fn when(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// The page's HTML; a template that fails to render (it cannot, short of a bug) is logged and
/// replaced by a plain error page.
pub fn render(page: &impl Template) -> String {
    page.render().unwrap_or_else(|error| {
        tracing::error!(%error, "a console page failed to render");
        "<!doctype html><html lang=\"en\"><title>Error · Bookstore</title><h1>Something went wrong</h1></html>".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_by_browser_and_system() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
                "Chrome on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
                "Firefox on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 15) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            ("curl/8.5.0", "curl"),
            ("api-tests", "Other device"),
            ("", "Unknown device"),
        ];
        for (agent, named) in cases {
            assert_eq!(device(agent), named, "{agent}");
        }
    }

    #[test]
    fn prices_show_cents_as_a_decimal() {
        assert_eq!(price(999), "9.99");
        assert_eq!(price(5), "0.05");
        assert_eq!(price(120_000), "1200.00");
    }

    #[test]
    fn field_errors_read_as_sentences_beside_their_field() {
        let errors = FieldErrors::new(BTreeMap::from([
            (
                "isbn".to_owned(),
                vec!["must be an ISBN-10 or ISBN-13".to_owned()],
            ),
            ("owner".to_owned(), vec!["unknown".to_owned()]),
        ]));
        assert_eq!(
            errors.get("isbn").unwrap(),
            "Must be an ISBN-10 or ISBN-13."
        );
        assert_eq!(errors.get("title"), None);
        assert_eq!(errors.others(&["isbn"]), ["owner: unknown"]);
    }

    #[test]
    fn text_is_escaped() {
        let page = ErrorPage {
            nav: None,
            title: "<b>x</b>",
            message: "<script>alert(1)</script>",
            status: 400,
            request_id: String::new(),
            retry: false,
        };
        let html = render(&page);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&#60;script&#62;alert(1)"), "{html}");
    }
}
