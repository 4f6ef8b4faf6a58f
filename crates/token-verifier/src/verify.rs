use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use serde::Deserialize;

use crate::{Claims, KeySet, TokenType, unix_now_ms};

/// Tokens longer than this are refused before any parsing: ours are well under 1 KiB.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token is refused. Each variant is a metrics label and maps to a gRPC/HTTP answer in
/// the service that asked; none of them tells the client more than "invalid token".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("token is malformed")]
    Malformed,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token is for another issuer or audience")]
    WrongAudience,
    #[error("token is of the wrong type")]
    WrongType,
    #[error("token has been revoked")]
    Revoked,
}

impl Rejection {
    /// A stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongAudience => "wrong_audience",
            Self::WrongType => "wrong_type",
            Self::Revoked => "revoked",
        }
    }
}

/// `tokens.*` keys that verification needs; auth-service issues with the same values.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifierSettings {
    pub issuer: String,
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
}

impl Default for VerifierSettings {
    fn default() -> Self {
        Self {
            issuer: "bookstore-auth".to_owned(),
            audience: "bookstore".to_owned(),
            leeway_secs: 5,
        }
    }
}

impl VerifierSettings {
    /// The `(key, value, min, max)` rows of the numeric keys, for the service's range checks:
    /// more than five minutes of tolerated skew would stretch every token's life noticeably.
    pub fn ranges(&self) -> [(&'static str, u64, u64, u64); 1] {
        [("tokens.leeway_secs", self.leeway_secs, 0, 300)]
    }
}

/// Checks tokens against a [`KeySet`] with fixed expectations.
#[derive(Clone)]
pub struct Verifier {
    leeway: i64,
    // One prepared Validation per allowed algorithm: each pins the token's `alg` to its key's.
    eddsa: Validation,
    rs256: Validation,
    es256: Validation,
}

impl Verifier {
    pub fn new(settings: &VerifierSettings) -> Self {
        let validation = |algorithm| {
            let mut v = Validation::new(algorithm);
            v.leeway = settings.leeway_secs;
            v.validate_exp = true;
            v.validate_nbf = true;
            v.validate_aud = true;
            v.set_issuer(&[&settings.issuer]);
            v.set_audience(&[&settings.audience]);
            v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
            v
        };
        Self {
            leeway: i64::try_from(settings.leeway_secs).unwrap_or(i64::MAX),
            eddsa: validation(Algorithm::EdDSA),
            rs256: validation(Algorithm::RS256),
            es256: validation(Algorithm::ES256),
        }
    }

    /// Clock skew tolerated on time claims, in seconds.
    pub fn leeway(&self) -> i64 {
        self.leeway
    }

    /// The claims of `token` if it is a valid token of type `expected` signed by a key of
    /// `keys`. Says nothing about revocation.
    ///
    /// # Errors
    /// The [`Rejection`] that applies first.
    pub fn verify(
        &self,
        keys: &KeySet,
        token: &str,
        expected: TokenType,
    ) -> Result<Claims, Rejection> {
        let key = keys.get(&key_id(token)?).ok_or(Rejection::BadSignature)?;
        let validation = match key.algorithm {
            Algorithm::EdDSA => &self.eddsa,
            Algorithm::RS256 => &self.rs256,
            Algorithm::ES256 => &self.es256,
            _ => return Err(Rejection::BadSignature),
        };
        let claims = decode::<Claims>(token, &key.key, validation)
            .map_err(|error| classify(error.kind()))?
            .claims;
        if claims.sub.is_empty() || claims.sid.is_empty() || claims.jti.is_empty() {
            return Err(Rejection::Malformed);
        }
        let latest_ms = unix_now_ms().saturating_add(self.leeway.saturating_mul(1_000));
        if claims.issued_at_ms > latest_ms {
            return Err(Rejection::NotYetValid);
        }
        if claims.typ != expected {
            return Err(Rejection::WrongType);
        }
        Ok(claims)
    }
}

/// The `kid` of a token's header, read only when the token is of a plausible size.
///
/// # Errors
/// [`Rejection::Malformed`] for an oversized token or a header without `kid`.
pub(crate) fn key_id(token: &str) -> Result<String, Rejection> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Rejection::Malformed);
    }
    decode_header(token)
        .ok()
        .and_then(|header| header.kid)
        .ok_or(Rejection::Malformed)
}

fn classify(kind: &ErrorKind) -> Rejection {
    match kind {
        ErrorKind::ExpiredSignature => Rejection::Expired,
        ErrorKind::ImmatureSignature => Rejection::NotYetValid,
        ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => Rejection::WrongAudience,
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_) => Rejection::BadSignature,
        _ => Rejection::Malformed,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::Ed25519KeyPair;
    use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, ThumbprintHash};
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::{Value, json};

    use super::*;
    use crate::unix_now;

    #[test]
    fn every_numeric_key_is_range_checked() {
        // Every field by name, without `..`: a new key fails to compile here until it has a row
        // below (or is not numeric).
        let VerifierSettings {
            issuer: _,
            audience: _,
            leeway_secs: _,
        } = VerifierSettings::default();
        let table: &[test_support::Bound<VerifierSettings>] =
            &[("tokens.leeway_secs", |s, v| s.leeway_secs = v, 0, 300)];
        test_support::assert_bounds(
            &VerifierSettings::default(),
            |s| service_support::check_ranges(&s.ranges()),
            table,
        );
    }

    struct Signer {
        key: EncodingKey,
        kid: String,
        keys: KeySet,
    }

    fn signer() -> Signer {
        let der = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).unwrap();
        let key = EncodingKey::from_ed_der(der.as_ref());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA).unwrap();
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).unwrap();
        jwk.common.key_id = Some(kid.clone());
        jwk.common.key_algorithm = Some(KeyAlgorithm::EdDSA);
        let keys = KeySet::from_jwks([&jwk]).unwrap();
        Signer { key, kid, keys }
    }

    impl Signer {
        fn sign(&self, claims: &Value) -> String {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(self.kid.clone());
            encode(&header, claims, &self.key).unwrap()
        }
    }

    fn claims(typ: &str) -> Value {
        let now = unix_now();
        json!({
            "iss": "bookstore-auth", "aud": "bookstore", "sub": "u1", "sid": "s1", "jti": "j1",
            "iat": now, "nbf": now, "exp": now + 900, "typ": typ, "roles": ["user"],
        })
    }

    fn with(mut claims: Value, key: &str, value: Value) -> Value {
        claims[key] = value;
        claims
    }

    fn verify(signer: &Signer, claims: &Value, expected: TokenType) -> Result<Claims, Rejection> {
        Verifier::new(&VerifierSettings::default()).verify(
            &signer.keys,
            &signer.sign(claims),
            expected,
        )
    }

    #[test]
    fn a_well_formed_token_yields_its_claims() {
        let signer = signer();
        let verified = verify(&signer, &claims("access"), TokenType::Access).unwrap();
        assert_eq!((verified.sub.as_str(), verified.sid.as_str()), ("u1", "s1"));
        assert!(verified.has_role("user"));
    }

    #[test]
    fn the_token_type_must_match() {
        let signer = signer();
        assert_eq!(
            verify(&signer, &claims("refresh"), TokenType::Access),
            Err(Rejection::WrongType)
        );
        assert_eq!(
            verify(&signer, &claims("access"), TokenType::Refresh),
            Err(Rejection::WrongType)
        );
    }

    #[test]
    fn time_claims_are_checked_within_the_leeway() {
        let signer = signer();
        let now = unix_now();
        let cases = [
            (
                with(claims("access"), "exp", json!(now - 60)),
                Err(Rejection::Expired),
            ),
            (with(claims("access"), "exp", json!(now - 2)), Ok(())),
            (
                with(claims("access"), "nbf", json!(now + 60)),
                Err(Rejection::NotYetValid),
            ),
            (
                with(claims("access"), "iat", json!(now + 60)),
                Err(Rejection::NotYetValid),
            ),
            (with(claims("access"), "iat", json!(now + 2)), Ok(())),
            (
                with(claims("access"), "iat", json!(now as f64 + 1.5)),
                Ok(()),
            ),
            (
                with(claims("access"), "iat", json!(now as f64 + 60.5)),
                Err(Rejection::NotYetValid),
            ),
        ];
        for (claims, expected) in cases {
            assert_eq!(
                verify(&signer, &claims, TokenType::Access).map(drop),
                expected,
                "{claims}"
            );
        }
    }

    #[test]
    fn issuer_and_audience_must_be_ours() {
        let signer = signer();
        for (key, value) in [("iss", "someone-else"), ("aud", "another-api")] {
            let claims = with(claims("access"), key, json!(value));
            assert_eq!(
                verify(&signer, &claims, TokenType::Access),
                Err(Rejection::WrongAudience)
            );
        }
    }

    #[test]
    fn missing_or_empty_claims_are_malformed() {
        let signer = signer();
        for key in ["sid", "jti", "sub", "exp", "typ"] {
            let mut claims = claims("access");
            claims.as_object_mut().unwrap().remove(key);
            assert_eq!(
                verify(&signer, &claims, TokenType::Access).map(drop),
                Err(Rejection::Malformed),
                "{key}"
            );
        }
        let empty_sid = with(claims("access"), "sid", json!(""));
        assert_eq!(
            verify(&signer, &empty_sid, TokenType::Access).map(drop),
            Err(Rejection::Malformed)
        );
    }

    #[test]
    fn unknown_keys_and_oversized_tokens_are_refused_before_verifying() {
        let signer = signer();
        let other = self::signer();
        let verifier = Verifier::new(&VerifierSettings::default());
        let foreign = other.sign(&claims("access"));
        assert_eq!(
            verifier
                .verify(&signer.keys, &foreign, TokenType::Access)
                .map(drop),
            Err(Rejection::BadSignature)
        );
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            verifier
                .verify(&signer.keys, &huge, TokenType::Access)
                .map(drop),
            Err(Rejection::Malformed)
        );
    }
}
