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

    /// The fields as a client would send them back.
    pub fn to_input(&self) -> FieldInput {
        FieldInput {
            title: self.title.clone(),
            author: self.author.clone(),
            publisher: self.publisher.clone(),
            isbn: self.isbn.as_ref().map(|isbn| isbn.as_str().to_owned()),
            price_cents: self.price_cents,
            published_year: self.published_year,
        }
    }

    /// Lower-cased title and author: what free-text search looks in.
    pub fn search_text(&self) -> String {
        format!("{}\n{}", self.title, self.author).to_lowercase()
    }
}

/// `current` with the `fields` of `change` taken over, then validated as a whole.
///
/// # Errors
/// One message per invalid field of the result.
pub fn apply(
    current: &BookFields,
    change: &FieldInput,
    fields: &[Field],
) -> Result<BookFields, FieldErrors> {
    let mut merged = current.to_input();
    for field in fields {
        match field {
            Field::Title => merged.title.clone_from(&change.title),
            Field::Author => merged.author.clone_from(&change.author),
            Field::Publisher => merged.publisher.clone_from(&change.publisher),
            Field::Isbn => merged.isbn.clone_from(&change.isbn),
            Field::PriceCents => merged.price_cents = change.price_cents,
            Field::PublishedYear => merged.published_year = change.published_year,
        }
    }
    BookFields::parse(&merged)
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
    fn applying_a_change_touches_only_the_named_fields() {
        let current = BookFields::parse(&input()).unwrap();
        let change = FieldInput {
            title: "Dune Messiah".to_owned(),
            publisher: None,
            price_cents: 1299,
            ..FieldInput::default()
        };
        let updated = apply(&current, &change, &[Field::Title, Field::PriceCents]).unwrap();
        assert_eq!(
            (updated.title.as_str(), updated.price_cents),
            ("Dune Messiah", 1299)
        );
        assert_eq!(updated.author, current.author);
        let cleared = apply(&current, &change, &[Field::Isbn]).unwrap();
        assert_eq!(
            cleared.isbn, None,
            "a named field that is absent is cleared"
        );
    }
}
