use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use serde::Deserialize;

use crate::{Claims, KeySet, TokenType, unix_now};

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
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::Malformed);
        }
        let header = decode_header(token).map_err(|_| Rejection::Malformed)?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| keys.get(kid))
            .ok_or(Rejection::BadSignature)?;
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
        if claims.iat > unix_now().saturating_add(self.leeway) {
            return Err(Rejection::NotYetValid);
        }
        if claims.typ != expected {
            return Err(Rejection::WrongType);
        }
        Ok(claims)
    }
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
