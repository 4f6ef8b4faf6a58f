//! Extractors: what a handler learns about its request. [`Caller`] is the authenticated user
//! (token from `Authorization: Bearer` or `x-access-token`, verified locally, then checked for
//! revocation); [`AdminCaller`] also requires the admin role; [`RequestContext`] carries the
//! request id and the client's address and user agent.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::{AUTHORIZATION, USER_AGENT};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use token_verifier::{AuthFailure, Claims, Rejection, bearer_token};

use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::state::AppState;
use crate::upstream::CallContext;

type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

/// The request's id and where it came from.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub client_ip: String,
    pub user_agent: String,
}

impl RequestContext {
    pub(crate) fn of(request: &HttpRequest, trust_forwarded_for: bool) -> Self {
        let forwarded = trust_forwarded_for
            .then(|| {
                // The last entry is the one our trusted proxy added: the address it saw.
                request
                    .headers()
                    .get("x-forwarded-for")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|list| list.rsplit(',').next())
                    .and_then(|last| last.trim().parse::<IpAddr>().ok())
            })
            .flatten();
        let client_ip = forwarded
            .or_else(|| request.peer_addr().map(|addr| addr.ip()))
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        Self {
            request_id: request
                .extensions()
                .get::<RequestId>()
                .map(|id| id.0.clone())
                .unwrap_or_default(),
            client_ip,
            user_agent: request
                .headers()
                .get(USER_AGENT)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_control())
                .collect(),
        }
    }

    /// Upstream calls on behalf of nobody in particular (register, login, refresh).
    pub fn anonymous_call(&self) -> CallContext {
        CallContext {
            request_id: self.request_id.clone(),
            token: None,
        }
    }
}

impl FromRequest for RequestContext {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let trust = state(request).is_ok_and(|state| state.trust_forwarded_for);
        std::future::ready(Ok(Self::of(request, trust)))
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
    pub token: String,
    pub context: RequestContext,
}

impl Caller {
    /// Upstream calls on the caller's behalf, with its token.
    pub fn call(&self) -> CallContext {
        CallContext {
            request_id: self.context.request_id.clone(),
            token: Some(self.token.clone()),
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = state(request);
        let token = access_token(request);
        let trust = state.as_ref().is_ok_and(|state| state.trust_forwarded_for);
        let context = RequestContext::of(request, trust);
        Box::pin(async move {
            let state = state?;
            let token = token.inspect_err(|_| state.metrics.token_rejected("missing"))?;
            let claims = authenticate(&state, &token).await?;
            Ok(Self {
                claims,
                token,
                context,
            })
        })
    }
}

/// An authenticated caller with the admin role.
#[derive(Debug, Clone)]
pub struct AdminCaller(pub Caller);

impl FromRequest for AdminCaller {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::from_request(request, payload);
        Box::pin(async move {
            let caller = caller.await?;
            if caller.claims.has_role("admin") {
                Ok(Self(caller))
            } else {
                Err(ApiError::Forbidden(
                    "this route needs the admin role".to_owned(),
                ))
            }
        })
    }
}

pub(crate) fn state(request: &HttpRequest) -> Result<Arc<AppState>, ApiError> {
    request
        .app_data::<web::Data<Arc<AppState>>>()
        .map(|data| Arc::clone(data.get_ref()))
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))
}

/// The access token of a request: exactly one `Authorization: Bearer` header, else an
/// `x-access-token` header.
fn access_token(request: &HttpRequest) -> Result<String, ApiError> {
    let mut authorizations = request.headers().get_all(AUTHORIZATION);
    if let Some(first) = authorizations.next() {
        if authorizations.next().is_some() {
            return Err(ApiError::invalid_token(
                "send one Authorization header, not several",
            ));
        }
        return first
            .to_str()
            .ok()
            .and_then(bearer_token)
            .map(ToOwned::to_owned)
            .ok_or_else(|| {
                ApiError::invalid_token("the Authorization header must be `Bearer <token>`")
            });
    }
    request
        .headers()
        .get("x-access-token")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .map(ToOwned::to_owned)
        .ok_or_else(|| ApiError::invalid_token("an access token is required"))
}

pub(crate) async fn authenticate(state: &AppState, token: &str) -> Result<Claims, ApiError> {
    match state.authenticator.authenticate(token).await {
        Ok(claims) => Ok(claims),
        Err(AuthFailure::Missing) => {
            state.metrics.token_rejected("missing");
            Err(ApiError::invalid_token("an access token is required"))
        }
        Err(AuthFailure::Rejected(rejection)) => {
            state.metrics.token_rejected(rejection.as_str());
            Err(ApiError::invalid_token(match rejection {
                Rejection::Expired => "the access token has expired",
                Rejection::Revoked => "the access token has been revoked",
                Rejection::WrongType => "this is not an access token",
                _ => "the access token is invalid",
            }))
        }
        Err(AuthFailure::StoreUnavailable { claims, error }) if state.revocation_fail_open => {
            tracing::warn!(%error, "revocation not checked (fail open)");
            Ok(*claims)
        }
        Err(AuthFailure::KeysUnavailable) => {
            state.metrics.token_rejected("keys_unavailable");
            Err(ApiError::unavailable(
                "access tokens cannot be checked until auth-service's keys are loaded; try again shortly",
            ))
        }
        Err(AuthFailure::StoreUnavailable { error, .. }) => {
            tracing::warn!(%error, "revocation cannot be checked; refusing (fail closed)");
            state.metrics.token_rejected("revocation_unavailable");
            Err(ApiError::unavailable(
                "token revocation cannot be checked right now; try again shortly",
            ))
        }
    }
}
