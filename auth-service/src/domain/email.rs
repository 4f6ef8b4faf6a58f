use super::has_control_chars;

const MAX_BYTES: usize = 254;

/// A plausible email address, and its lower-cased key for uniqueness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    address: String,
    key: String,
}

impl Email {
    /// Trims and checks the shape `local@domain.tld`: one `@`, no whitespace or control
    /// characters, at most 254 bytes. Deliverability is not checked.
    ///
    /// # Errors
    /// A message for the client.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let address = raw.trim();
        if address.len() > MAX_BYTES {
            return Err(format!("must be at most {MAX_BYTES} bytes"));
        }
        if has_control_chars(address) || address.chars().any(char::is_whitespace) {
            return Err("must not contain spaces or control characters".to_owned());
        }
        let shape_ok = match address.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
        if !shape_ok {
            return Err("must be an email address such as name@example.com".to_owned());
        }
        Ok(Self {
            address: address.to_owned(),
            key: email_key(address),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

/// What two addresses that differ only in letter case have in common.
pub fn email_key(address: &str) -> String {
    address.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn addresses_are_kept_as_given_and_keyed_in_lower_case() {
        let email = Email::parse(" Ada@Example.org ").unwrap();
        assert_eq!(email.as_str(), "Ada@Example.org");
        assert_eq!(email.key(), "ada@example.org");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "a@b@c.org",
            "a da@x.org",
            "ada@.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Email::parse(&format!("{}@example.org", "a".repeat(250))).is_err());
    }
}
