use std::collections::HashMap;

use jsonwebtoken::jwk::{Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use proto::auth::v1 as pb;
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("a JWK has no `kid`")]
    MissingKeyId,
    #[error("JWK `{0}` has no `alg` or one other than EdDSA, RS256 and ES256")]
    UnsupportedAlgorithm(String),
    #[error("JWK `{kid}` is malformed: {source}")]
    Malformed {
        kid: String,
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    #[error("JWK is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A verification key and the one algorithm it accepts.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

/// The public keys that tokens may be signed with, by `kid`.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, VerifyingKey>,
}

impl KeySet {
    /// # Errors
    /// A key without `kid`, with an algorithm outside EdDSA/RS256/ES256, or malformed.
    pub fn from_jwks<'a>(jwks: impl IntoIterator<Item = &'a Jwk>) -> Result<Self, JwksError> {
        let mut keys = HashMap::new();
        for jwk in jwks {
            let kid = jwk.common.key_id.clone().ok_or(JwksError::MissingKeyId)?;
            let algorithm = jwk
                .common
                .key_algorithm
                .and_then(allowed_algorithm)
                .ok_or_else(|| JwksError::UnsupportedAlgorithm(kid.clone()))?;
            let key = DecodingKey::from_jwk(jwk).map_err(|source| JwksError::Malformed {
                kid: kid.clone(),
                source,
            })?;
            keys.insert(kid, VerifyingKey { algorithm, key });
        }
        Ok(Self { keys })
    }

    /// # Errors
    /// As [`from_jwks`](Self::from_jwks).
    pub fn from_proto(jwks: &[pb::Jwk]) -> Result<Self, JwksError> {
        let parsed = jwks
            .iter()
            .map(jwk_from_proto)
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_jwks(&parsed)
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }
}

/// The gRPC form of a JWK: its members as strings, unused ones empty.
pub fn jwk_to_proto(jwk: &Jwk) -> pb::Jwk {
    let value = serde_json::to_value(jwk).unwrap_or_default();
    let member = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    pb::Jwk {
        kty: member("kty"),
        kid: member("kid"),
        alg: member("alg"),
        r#use: member("use"),
        crv: member("crv"),
        x: member("x"),
        y: member("y"),
        n: member("n"),
        e: member("e"),
    }
}

/// Reads the gRPC form of a JWK back.
///
/// # Errors
/// The members do not make a JWK.
pub fn jwk_from_proto(jwk: &pb::Jwk) -> Result<Jwk, JwksError> {
    let members = [
        ("kty", &jwk.kty),
        ("kid", &jwk.kid),
        ("alg", &jwk.alg),
        ("use", &jwk.r#use),
        ("crv", &jwk.crv),
        ("x", &jwk.x),
        ("y", &jwk.y),
        ("n", &jwk.n),
        ("e", &jwk.e),
    ];
    let object: Map<String, Value> = members
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| (name.to_owned(), Value::String(value.clone())))
        .collect();
    Ok(serde_json::from_value(Value::Object(object))?)
}

/// The algorithm a JWK declares, if it is one bookstore keys may use: anything else in a
/// JWKS is refused.
fn allowed_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    match alg {
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        _ => None,
    }
}
