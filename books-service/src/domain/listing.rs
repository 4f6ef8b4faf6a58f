use grpc_conventions::{FieldErrors, PageToken, page_limit};

const MAX_FILTER_CHARS: usize = 300;

/// A validated ListBooks request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Whose books; `None` for every user's (admins only).
    pub owner: Option<String>,
    /// Exact author name.
    pub author: Option<String>,
    /// A `LIKE` pattern over the lower-cased title and author, wildcards in the text escaped.
    pub search: Option<String>,
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
                search: search.map(|text| contains_pattern(&text.to_lowercase())),
                after,
                limit,
            }),
            _ => Err(errors),
        }
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
        assert_eq!(query.search.as_deref(), Some("%100\\%\\_sure\\\\%"));
        assert_eq!(query.limit, 20);
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
