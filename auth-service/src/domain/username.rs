use unicode_normalization::UnicodeNormalization;

use super::has_control_chars;

const MIN_CHARS: usize = 3;
const MAX_CHARS: usize = 32;

/// A valid username, in NFKC form, with the key that uniqueness is decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    display: String,
    key: String,
}

impl Username {
    /// Trims, normalises (NFKC) and checks: 3–32 characters among letters, digits, `_`, `-`
    /// and `.`, in any script.
    ///
    /// # Errors
    /// A message for the client.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if has_control_chars(raw) {
            return Err("must not contain control characters".to_owned());
        }
        let display: String = raw.trim().nfkc().collect();
        let length = display.chars().count();
        if !(MIN_CHARS..=MAX_CHARS).contains(&length) {
            return Err(format!(
                "must be {MIN_CHARS} to {MAX_CHARS} characters long"
            ));
        }
        let allowed = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
        if !display.chars().all(allowed) {
            return Err("may contain only letters, digits, '_', '-' and '.'".to_owned());
        }
        let key = login_key(&display);
        Ok(Self { display, key })
    }

    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// What two usernames that look the same have in common.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// The comparison key of a username: NFKC, then full Unicode case folding, then NFKC again
/// (case folding can denormalise). `Straße`, `STRASSE` and `ｓｔｒａｓｓｅ` share one key.
pub fn login_key(name: &str) -> String {
    let folded = caseless::default_case_fold_str(&name.trim().nfkc().collect::<String>());
    folded.nfkc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_differ_by_case_or_width_share_a_key() {
        let plain = Username::parse("Strasse").unwrap();
        let sharp = Username::parse("STRAßE").unwrap();
        let wide = Username::parse("ｓｔｒａｓｓｅ").unwrap();
        assert_eq!(plain.key(), sharp.key());
        assert_eq!(plain.key(), wide.key());
        assert_eq!(wide.as_str(), "strasse");
    }

    #[test]
    fn letters_of_any_script_and_a_few_marks_are_allowed() {
        assert!(Username::parse("ana.maria_1-x").is_ok());
        assert!(Username::parse("Ελένη").is_ok());
        assert!(Username::parse("  alice  ").is_ok_and(|u| u.as_str() == "alice"));
    }

    #[test]
    fn other_names_are_refused_with_a_reason() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("al@ice").is_err());
        assert!(Username::parse("al\u{0}ice").is_err());
        assert!(Username::parse("robert'); DROP TABLE users;--").is_err());
    }
}
