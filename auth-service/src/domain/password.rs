use std::collections::HashSet;
use std::sync::LazyLock;

use secrecy::SecretString;

use super::has_control_chars;
use crate::config::PasswordSettings;

/// bcrypt reads at most 72 bytes; longer passwords are refused, never silently truncated.
pub const MAX_BYTES: usize = 72;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// The configurable part of the password policy (README, `passwords.*`).
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    min_length: usize,
    require_character_classes: bool,
}

/// A password that passed the policy, ready to hash.
pub struct NewPassword(SecretString);

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(…)")
    }
}

impl NewPassword {
    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

impl PasswordPolicy {
    pub fn new(settings: &PasswordSettings) -> Self {
        Self {
            min_length: settings.min_length,
            require_character_classes: settings.require_character_classes,
        }
    }

    /// Checks `password` for an account named `username` with address `email`.
    ///
    /// # Errors
    /// A message for the client saying which rule failed.
    pub fn check(
        &self,
        password: &str,
        username: &str,
        email: &str,
    ) -> Result<NewPassword, String> {
        if password.chars().count() < self.min_length {
            return Err(format!(
                "must be at least {} characters long",
                self.min_length
            ));
        }
        if password.len() > MAX_BYTES {
            return Err(format!("must be at most {MAX_BYTES} bytes of UTF-8"));
        }
        if has_control_chars(password) {
            return Err("must not contain control characters".to_owned());
        }
        let lowered = password.to_lowercase();
        let same_as = |other: &str| !other.is_empty() && lowered == other.to_lowercase();
        if same_as(username) || same_as(email) {
            return Err("must differ from the username and the email".to_owned());
        }
        if COMMON.contains(lowered.as_str()) {
            return Err("is too common; choose a less guessable password".to_owned());
        }
        if self.require_character_classes && character_classes(password) < 3 {
            return Err(
                "must mix three of: lower case, upper case, digits, other characters".to_owned(),
            );
        }
        Ok(NewPassword(SecretString::from(password.to_owned())))
    }
}

fn character_classes(password: &str) -> usize {
    let has = |test: fn(&char) -> bool| password.chars().any(|c| test(&c));
    [
        has(char::is_ascii_lowercase) || has(|c| c.is_lowercase()),
        has(|c| c.is_uppercase()),
        has(char::is_ascii_digit),
        has(|c| !c.is_alphanumeric()),
    ]
    .into_iter()
    .filter(|present| *present)
    .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(require_character_classes: bool) -> PasswordPolicy {
        PasswordPolicy {
            min_length: 8,
            require_character_classes,
        }
    }

    #[test]
    fn a_long_uncommon_password_passes() {
        assert!(
            policy(false)
                .check("correct horse battery", "ada", "ada@example.org")
                .is_ok()
        );
    }

    #[test]
    fn each_rule_refuses_what_it_names() {
        let p = policy(false);
        assert!(
            p.check("short1", "ada", "a@b.org")
                .unwrap_err()
                .contains("at least 8")
        );
        assert!(
            p.check(&"é".repeat(37), "ada", "a@b.org")
                .unwrap_err()
                .contains("72 bytes")
        );
        assert!(
            p.check("pass\u{0}word-x", "ada", "a@b.org")
                .unwrap_err()
                .contains("control")
        );
        assert!(
            p.check("Ada.Lovelace", "ada.lovelace", "a@b.org")
                .unwrap_err()
                .contains("differ")
        );
        assert!(
            p.check("PASSWORD1", "ada", "a@b.org")
                .unwrap_err()
                .contains("common")
        );
    }

    #[test]
    fn seventy_two_bytes_is_the_inclusive_limit() {
        assert!(
            policy(false)
                .check(&"x1".repeat(36), "ada", "a@b.org")
                .is_ok()
        );
        assert!(
            policy(false)
                .check(&"x1".repeat(36).replace('1', "é"), "ada", "a@b.org")
                .is_err()
        );
    }

    #[test]
    fn character_classes_are_required_only_when_configured() {
        assert!(
            policy(false)
                .check("lowercaseonly", "ada", "a@b.org")
                .is_ok()
        );
        assert!(
            policy(true)
                .check("lowercaseonly", "ada", "a@b.org")
                .is_err()
        );
        assert!(policy(true).check("Lower-case9", "ada", "a@b.org").is_ok());
    }
}
