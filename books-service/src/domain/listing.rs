use grpc_conventions::{FieldErrors, PageToken, page_limit};

const MAX_FILTER_CHARS: usize = 300;

/// A validated ListBooks request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Whose books; `None` for every user's (admins only).
    pub owner: Option<String>,
    /// Exact author name.
    pub author: Option<String>,
    pub search: Option<Search>,
    pub after: Option<PageToken>,
    pub limit: i64,
}

impl ListQuery {
    /// # Errors
    /// One message per invalid parameter.
    pub fn parse(
        owner: Option<String>,
        page_size: i32,
        page_token: &str,
        query: &str,
        author: &str,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let limit = page_limit(page_size).map_err(|e| errors.merge(e)).ok();
        let after = PageToken::decode(page_token)
            .map_err(|e| errors.merge(e))
            .ok();
        let search = errors.check("query", filter(query)).flatten();
        let author = errors.check("author", filter(author)).flatten();
        match (limit, after) {
            (Some(limit), Some(after)) if errors.is_empty() => Ok(Self {
                owner,
                author,
                search: search.map(|text| Search::new(&text)),
                after,
                limit,
            }),
            _ => Err(errors),
        }
    }
}

/// Free-text search: the books whose lower-cased title or author contains the lower-cased text,
/// every character taken literally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// `%text%` over the search text (see [`search_text`](super::search_text)), wildcards in the
    /// text escaped: the condition that decides.
    pub pattern: String,
    /// The lower-cased text's whitespace-separated words of [`MIN_INDEXED_CHARS`] or more: each
    /// is a substring of every match, so a trigram index finds the candidates from them. Empty
    /// when no word is that long: then no index serves the search.
    pub words: Vec<String>,
}

/// The shortest word a trigram index can look up.
const MIN_INDEXED_CHARS: usize = 3;

impl Search {
    fn new(text: &str) -> Self {
        let text = text.to_lowercase();
        // Split at whitespace only: a trigram spanning a word boundary occurs in most books, so
        // looking it up costs more than it narrows; one spanning other punctuation is rare.
        let words = text
            .split_whitespace()
            .filter(|word| word.chars().count() >= MIN_INDEXED_CHARS)
            .map(str::to_owned)
            .collect();
        Self {
            pattern: contains_pattern(&text),
            words,
        }
    }

    /// `%word%` for each of [`words`](Self::words), escaped like [`pattern`](Self::pattern).
    pub fn word_patterns(&self) -> impl Iterator<Item = String> {
        self.words.iter().map(|word| contains_pattern(word))
    }
}

/// Trimmed filter text; empty means no filter.
fn filter(raw: &str) -> Result<Option<String>, String> {
    let text = raw.trim();
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    if text.chars().count() > MAX_FILTER_CHARS {
        return Err(format!("must be at most {MAX_FILTER_CHARS} characters"));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// `%text%` with `\`, `%` and `_` escaped (queries say `ESCAPE '\'`), so the text matches
/// literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_lower_cased_and_matched_literally() {
        let query = ListQuery::parse(None, 0, "", " 100%_Sure\\ ", "").unwrap();
        let search = query.search.unwrap();
        assert_eq!(search.pattern, "%100\\%\\_sure\\\\%");
        assert_eq!(search.words, ["100%_sure\\"]);
        assert_eq!(query.limit, 20);
    }

    #[test]
    fn only_words_of_three_characters_or_more_are_looked_up() {
        let words = |text: &str| {
            ListQuery::parse(None, 0, "", text, "")
                .unwrap()
                .search
                .unwrap()
                .words
        };
        assert_eq!(words("Le  GUIN of Earthsea"), ["guin", "earthsea"]);
        assert_eq!(
            words("ab c"),
            Vec::<String>::new(),
            "too short for an index"
        );
        assert_eq!(words("Éte"), ["éte"], "characters, not bytes");
    }

    #[test]
    fn every_bad_parameter_is_named() {
        let errors = ListQuery::parse(None, 101, "bogus", "a\u{7}", &"x".repeat(301)).unwrap_err();
        let fields: Vec<String> = grpc_conventions::field_violations(&errors.into_status())
            .into_iter()
            .map(|(field, _)| field)
            .collect();
        assert_eq!(fields, ["page_size", "page_token", "query", "author"]);
    }
}
