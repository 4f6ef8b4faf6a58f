use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::FieldErrors;

/// Page size when the caller gives none.
pub const DEFAULT_PAGE_SIZE: i64 = 20;
/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: i64 = 100;

/// The number of rows for a requested `page_size`: 0 means the default; anything outside
/// 1–100 is refused rather than silently clamped.
///
/// # Errors
/// A `page_size` violation.
pub fn page_limit(page_size: i32) -> Result<i64, FieldErrors> {
    match i64::from(page_size) {
        0 => Ok(DEFAULT_PAGE_SIZE),
        size @ 1..=MAX_PAGE_SIZE => Ok(size),
        _ => Err(FieldErrors::single(
            "page_size",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        )),
    }
}

/// Where the next page starts: the id of the last row of the previous one, kept opaque so
/// clients do not build tokens themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken(String);

const VERSION: &str = "v1:";

impl PageToken {
    pub fn after(last_id: &str) -> Self {
        Self(last_id.to_owned())
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{VERSION}{}", self.0))
    }

    /// Reads a token given back by a client; empty means the first page. The id must be a
    /// UUID, so a token can never smuggle anything into a query.
    ///
    /// # Errors
    /// A `page_token` violation for anything this service did not hand out.
    pub fn decode(token: &str) -> Result<Option<Self>, FieldErrors> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = || FieldErrors::single("page_token", "is not a token from a previous page");
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let id = text.strip_prefix(VERSION).ok_or_else(invalid)?;
        if !is_uuid(id) {
            return Err(invalid());
        }
        Ok(Some(Self(id.to_owned())))
    }

    pub fn last_id(&self) -> &str {
        &self.0
    }
}

/// A UUID in its canonical lower-case hyphenated form, as the services write them.
fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn page_sizes_default_and_are_bounded_without_clamping() {
        assert_eq!(page_limit(0).unwrap(), 20);
        assert_eq!(page_limit(1).unwrap(), 1);
        assert_eq!(page_limit(100).unwrap(), 100);
        assert!(page_limit(101).is_err());
        assert!(page_limit(-1).is_err());
    }

    #[test]
    fn tokens_round_trip_and_foreign_ones_are_refused() {
        let id = "0190f3b2-7c1e-7abc-8def-0123456789ab";
        let token = PageToken::after(id).encode();
        assert_eq!(PageToken::decode(&token).unwrap().unwrap().last_id(), id);
        assert_eq!(PageToken::decode("").unwrap(), None);
        let forged = URL_SAFE_NO_PAD.encode("v1:' OR 1=1 --");
        for bad in ["garbage!", "dGVzdA", forged.as_str(), id] {
            assert!(PageToken::decode(bad).is_err(), "{bad}");
        }
    }
}
