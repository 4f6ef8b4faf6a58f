//! `/.well-known/jwks.json`: auth-service's public keys, re-published from the gateway's cache.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

/// An RFC 7517 JWK set.
#[derive(Debug, Serialize, ToSchema)]
pub struct JwkSet {
    /// Public keys (`kty`, `kid`, `alg`, `use`, and `crv`/`x`/`y` or `n`/`e`).
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<jsonwebtoken::jwk::Jwk>,
}

/// The public keys that verify the bookstore's tokens.
#[utoipa::path(
    tag = "operations",
    path = "/.well-known/jwks.json",
    responses((status = 200, description = "The JWK set", body = JwkSet))
)]
#[get("/.well-known/jwks.json")]
pub async fn jwks(state: web::Data<Arc<AppState>>) -> Result<HttpResponse, ApiError> {
    let keys = state
        .authenticator
        .keys()
        .published()
        .iter()
        .map(token_verifier::jwk_from_proto)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| ApiError::Internal(error.into()))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(JwkSet { keys }))
}
