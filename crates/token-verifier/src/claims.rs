use revocation::TokenIdentity;
use serde::{Deserialize, Serialize};

/// Which of a session's two tokens this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// Short-lived; authorises API calls.
    Access,
    /// Long-lived; only exchanged at auth-service for a new pair.
    Refresh,
}

/// The claims of every bookstore token. All are required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// User id.
    pub sub: String,
    /// Session id.
    pub sid: String,
    /// Token id.
    pub jti: String,
    /// `iat` in milliseconds since the Unix epoch. On the wire it is a NumericDate with a
    /// fraction (RFC 7519 allows one), so that a user's cut-off can tell apart tokens issued
    /// within the same second on either side of it.
    #[serde(rename = "iat", with = "fractional_seconds")]
    pub issued_at_ms: i64,
    pub nbf: i64,
    pub exp: i64,
    pub typ: TokenType,
    /// Role names; empty in refresh tokens, whose holder gets fresh roles at each refresh.
    pub roles: Vec<String>,
}

impl Claims {
    /// What the revocation store decides on.
    pub fn identity(&self) -> TokenIdentity<'_> {
        TokenIdentity {
            token_id: &self.jti,
            session_id: &self.sid,
            user_id: &self.sub,
            issued_at_ms: self.issued_at_ms,
        }
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// Milliseconds as a JSON number of seconds: `1764590000.123`. Any JSON number is read back,
/// integers included; one that is not a finite time within `i64` milliseconds is refused.
mod fractional_seconds {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Beyond this, seconds × 1000 would not fit `i64` (and `f64` would round whole seconds).
    const MAX_SECONDS: f64 = 9.0e15 / 1_000.0;

    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's `with` signature
    pub fn serialize<S: Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        if ms.rem_euclid(1_000) == 0 {
            serializer.serialize_i64(ms.div_euclid(1_000))
        } else {
            // Exact for every millisecond up to year 285,000: f64 holds 15–16 digits.
            #[allow(clippy::cast_precision_loss)]
            serializer.serialize_f64(*ms as f64 / 1_000.0)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        if !seconds.is_finite() || seconds.abs() > MAX_SECONDS {
            return Err(D::Error::custom("iat is out of range"));
        }
        // In range by the check above, so the cast cannot saturate.
        #[allow(clippy::cast_possible_truncation)]
        Ok((seconds * 1_000.0).round() as i64)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn claims(issued_at_ms: i64) -> Claims {
        Claims {
            iss: "i".into(),
            aud: "a".into(),
            sub: "u".into(),
            sid: "s".into(),
            jti: "j".into(),
            issued_at_ms,
            nbf: 0,
            exp: 0,
            typ: TokenType::Access,
            roles: Vec::new(),
        }
    }

    #[test]
    fn iat_travels_as_seconds_with_a_millisecond_fraction() {
        for (ms, wire) in [
            (1_764_590_000_123, json!(1_764_590_000.123)),
            (1_764_590_000_001, json!(1_764_590_000.001)),
            (1_764_590_000_000, json!(1_764_590_000)),
        ] {
            let value = serde_json::to_value(claims(ms)).unwrap();
            assert_eq!(value["iat"], wire);
            let back: Claims = serde_json::from_value(value).unwrap();
            assert_eq!(back.issued_at_ms, ms);
        }
    }

    #[test]
    fn an_iat_that_is_no_time_is_refused() {
        let mut value = serde_json::to_value(claims(0)).unwrap();
        for iat in [
            json!(1e300),
            json!(-1e300),
            json!("1764590000"),
            json!(null),
        ] {
            value["iat"] = iat.clone();
            assert!(
                serde_json::from_value::<Claims>(value.clone()).is_err(),
                "{iat}"
            );
        }
    }
}
