//! Request bodies, read one way for every route: at most `body_limit` bytes (413 past it),
//! `application/json` only (415 otherwise), 400 when not JSON, 422 when JSON of the wrong shape.
//! The shape includes being an object: serde's derived structs would also take an array of their
//! fields in declaration order, which nothing documents and no client means.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::extract::state;

/// A handler argument holding the request's JSON object body as a `T`.
pub struct JsonBody<T>(pub T);

impl<T> JsonBody<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = state(request).map(|state| state.body_limit);
        let is_json = require_json(request);
        let payload = web::Payload::from_request(request, payload).into_inner();
        Box::pin(async move {
            is_json?;
            let payload = payload.map_err(|error| ApiError::BadRequest(error.to_string()))?;
            let body = read_body(payload, limit?).await?;
            parse_json(&body).map(Self)
        })
    }
}

/// The whole body, refusing it (413) as soon as it grows past `limit`.
pub async fn read_body(payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    payload
        .to_bytes_limited(limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })?
        .map_err(|error| ApiError::BadRequest(format!("the body could not be read: {error}")))
}

/// The request's media type, lower-cased, without parameters.
pub fn media_type(request: &HttpRequest) -> Option<String> {
    request
        .headers()
        .get(CONTENT_TYPE)?
        .to_str()
        .ok()?
        .split(';')
        .next()
        .map(|media| media.trim().to_ascii_lowercase())
}

pub fn require_json(request: &HttpRequest) -> Result<(), ApiError> {
    match media_type(request).as_deref() {
        Some("application/json") => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType(
            "send the body as application/json".to_owned(),
        )),
    }
}

/// A JSON object body: 400 when it is not JSON, 422 when it is but does not fit `T`.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let parsed = serde_json::from_slice(body).map_err(|error| {
        if error.is_data() {
            ApiError::Validation {
                detail: error.to_string(),
                errors: Default::default(),
            }
        } else {
            ApiError::BadRequest(format!("the body is not valid JSON: {error}"))
        }
    })?;
    // It parsed, so this is the first byte of the one JSON value of the body.
    if body.trim_ascii_start().first() == Some(&b'{') {
        Ok(parsed)
    } else {
        Err(ApiError::Validation {
            detail: "the body must be a JSON object".to_owned(),
            errors: Default::default(),
        })
    }
}
