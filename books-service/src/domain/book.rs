use chrono::Datelike;
use grpc_conventions::FieldErrors;

use super::Isbn;

const MAX_TEXT_CHARS: usize = 300;
/// Printing with movable type in Europe; nothing earlier is a plausible edition year.
const FIRST_YEAR: i32 = 1450;
/// One billion currency units in cents: far above any book, far below overflow.
const MAX_PRICE_CENTS: i64 = 100_000_000_000;

/// The editable fields of a valid book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookFields {
    pub title: String,
    pub author: String,
    pub publisher: Option<String>,
    pub isbn: Option<Isbn>,
    pub price_cents: i64,
    pub published_year: Option<i32>,
}

/// One editable field, as named in `update_mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Title,
    Author,
    Publisher,
    Isbn,
    PriceCents,
    PublishedYear,
}

impl Field {
    pub const ALL: [Self; 6] = [
        Self::Title,
        Self::Author,
        Self::Publisher,
        Self::Isbn,
        Self::PriceCents,
        Self::PublishedYear,
    ];

    pub fn parse(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|field| field.name() == path)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Title => "title",
            Self::Author => "author",
            Self::Publisher => "publisher",
            Self::Isbn => "isbn",
            Self::PriceCents => "price_cents",
            Self::PublishedYear => "published_year",
        }
    }
}

/// The fields as received; absent optional fields are `None`.
#[derive(Debug, Clone, Default)]
pub struct FieldInput {
    pub title: String,
    pub author: String,
    pub publisher: Option<String>,
    pub isbn: Option<String>,
    pub price_cents: i64,
    pub published_year: Option<i32>,
}

impl BookFields {
    /// Validates every field, naming each invalid one.
    ///
    /// # Errors
    /// One message per invalid field.
    pub fn parse(input: &FieldInput) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let title = errors.check("title", required_text(&input.title));
        let author = errors.check("author", required_text(&input.author));
        let publisher = errors.check("publisher", optional_text(input.publisher.as_deref()));
        let isbn = errors.check("isbn", optional_isbn(input.isbn.as_deref()));
        let price_cents = errors.check("price_cents", price(input.price_cents));
        let published_year = errors.check("published_year", year(input.published_year));
        match (title, author, publisher, isbn, price_cents, published_year) {
            (
                Some(title),
                Some(author),
                Some(publisher),
                Some(isbn),
                Some(price_cents),
                Some(published_year),
            ) => Ok(Self {
                title,
                author,
                publisher,
                isbn,
                price_cents,
                published_year,
            }),
            // Each `None` recorded its message.
            _ => Err(errors),
        }
    }

    /// Lower-cased title and author: what free-text search looks in.
    pub fn search_text(&self) -> String {
        search_text(&self.title, &self.author)
    }
}

/// What free-text search looks in: the lower-cased title and author.
pub fn search_text(title: &str, author: &str) -> String {
    format!("{title}\n{author}").to_lowercase()
}

/// The fields an update names, each validated; `None` leaves a field as it is stored, under
/// whatever rule it was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookChanges {
    pub title: Option<String>,
    pub author: Option<String>,
    /// `Some(None)` clears the publisher.
    pub publisher: Option<Option<String>>,
    /// `Some(None)` clears the ISBN.
    pub isbn: Option<Option<Isbn>>,
    pub price_cents: Option<i64>,
    /// `Some(None)` clears the year.
    pub published_year: Option<Option<i32>>,
}

impl BookChanges {
    /// Validates the `fields` of `change`, and only those: a stored value the update does not
    /// name is neither checked against today's rules nor rewritten.
    ///
    /// # Errors
    /// One message per invalid named field.
    pub fn parse(change: &FieldInput, fields: &[Field]) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let mut changes = Self::default();
        // In the order of `Field::ALL`, each once, however the mask lists them.
        for field in Field::ALL.into_iter().filter(|f| fields.contains(f)) {
            match field {
                Field::Title => {
                    changes.title = errors.check("title", required_text(&change.title));
                }
                Field::Author => {
                    changes.author = errors.check("author", required_text(&change.author));
                }
                Field::Publisher => {
                    changes.publisher =
                        errors.check("publisher", optional_text(change.publisher.as_deref()));
                }
                Field::Isbn => {
                    changes.isbn = errors.check("isbn", optional_isbn(change.isbn.as_deref()));
                }
                Field::PriceCents => {
                    changes.price_cents = errors.check("price_cents", price(change.price_cents));
                }
                Field::PublishedYear => {
                    changes.published_year =
                        errors.check("published_year", year(change.published_year));
                }
            }
        }
        errors.into_result().map(|()| changes)
    }
}

fn required_text(raw: &str) -> Result<String, String> {
    match optional_text(Some(raw))? {
        Some(text) => Ok(text),
        None => Err("is required".to_owned()),
    }
}

/// Trimmed text; empty means absent.
fn optional_text(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(text) = raw.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(format!("must be at most {MAX_TEXT_CHARS} characters"));
    }
    Ok(Some(text.to_owned()))
}

fn optional_isbn(raw: Option<&str>) -> Result<Option<Isbn>, String> {
    match raw.map(str::trim).filter(|text| !text.is_empty()) {
        Some(text) => Isbn::parse(text).map(Some),
        None => Ok(None),
    }
}

fn price(cents: i64) -> Result<i64, String> {
    if (0..=MAX_PRICE_CENTS).contains(&cents) {
        Ok(cents)
    } else {
        Err(format!("must be between 0 and {MAX_PRICE_CENTS}"))
    }
}

fn year(year: Option<i32>) -> Result<Option<i32>, String> {
    let last = chrono::Utc::now().year() + 1;
    match year {
        Some(year) if !(FIRST_YEAR..=last).contains(&year) => {
            Err(format!("must be between {FIRST_YEAR} and {last}"))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> FieldInput {
        FieldInput {
            title: "  Dune ".to_owned(),
            author: "Frank Herbert".to_owned(),
            publisher: Some(" ".to_owned()),
            isbn: Some("0-441-17271-7".to_owned()),
            price_cents: 999,
            published_year: Some(1965),
        }
    }

    #[test]
    fn valid_fields_are_trimmed_and_normalised() {
        let book = BookFields::parse(&input()).unwrap();
        assert_eq!(book.title, "Dune");
        assert_eq!(book.publisher, None, "blank means absent");
        assert_eq!(book.isbn.unwrap().as_str(), "9780441172719");
        assert_eq!(
            BookFields::parse(&input()).unwrap().search_text(),
            "dune\nfrank herbert"
        );
    }

    #[test]
    fn every_invalid_field_is_named() {
        let bad = FieldInput {
            title: " ".to_owned(),
            author: "x".repeat(301),
            publisher: Some("a\u{0}b".to_owned()),
            isbn: Some("123".to_owned()),
            price_cents: -1,
            published_year: Some(1200),
        };
        let errors = BookFields::parse(&bad).unwrap_err().into_status();
        let fields: Vec<String> = grpc_conventions::field_violations(&errors)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            fields,
            [
                "title",
                "author",
                "publisher",
                "isbn",
                "price_cents",
                "published_year"
            ]
        );
    }

    #[test]
    fn a_change_holds_only_the_named_fields_each_validated() {
        let change = FieldInput {
            title: "Dune Messiah".to_owned(),
            publisher: None,
            isbn: Some("123".to_owned()),
            price_cents: 1299,
            ..FieldInput::default()
        };
        let changes = BookChanges::parse(&change, &[Field::PriceCents, Field::Title]).unwrap();
        assert_eq!(
            changes,
            BookChanges {
                title: Some("Dune Messiah".to_owned()),
                price_cents: Some(1299),
                ..BookChanges::default()
            },
            "the invalid ISBN and the empty author are not named, so not checked"
        );
        let cleared = BookChanges::parse(&change, &[Field::Publisher]).unwrap();
        assert_eq!(
            cleared.publisher,
            Some(None),
            "a named field that is absent is cleared"
        );
        let errors = BookChanges::parse(&change, &[Field::Isbn, Field::Author, Field::Isbn])
            .unwrap_err()
            .into_status();
        let fields: Vec<String> = grpc_conventions::field_violations(&errors)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(fields, ["author", "isbn"], "each named field once");
    }
}
