//! `/api/auth/*`: registration, login, refresh, logout and sessions, answered by auth-service.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proto::auth::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::user::User;
use super::{BodyErrors, TokenErrors};
use super::{is_uuid, rfc3339};
use crate::error::{ApiError, Challenge, Problem};
use crate::extract::{Caller, RequestContext};
use crate::json_body::{JsonBody, media_type, parse_json, read_body, require_json};
use crate::rate_limit::Decision;
use crate::state::AppState;

type State = web::Data<Arc<AppState>>;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3–32 letters (of any script), digits, `_`, `-` or `.`; compared ignoring case and
    /// Unicode compatibility forms.
    #[schema(min_length = 3, max_length = 32)]
    pub username: String,
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 8 characters (`passwords.min_length`) to 72 bytes; not the username or email; not a
    /// common password.
    #[schema(max_length = 72)]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterResponse {
    pub user: User,
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
}

/// Credentials, as JSON or form fields (or use HTTP Basic instead).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The username or the email address.
    #[schema(min_length = 1, max_length = 254)]
    pub username: String,
    #[schema(min_length = 1, max_length = 72)]
    pub password: String,
}

/// A new token pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
}

impl From<pb::TokenPair> for TokenPair {
    fn from(pair: pb::TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
            token_type: pair.token_type,
            expires_in: pair.expires_in,
            refresh_expires_in: pair.refresh_expires_in,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    pub id: String,
    pub created_at: String,
    /// Last login or refresh.
    pub last_used_at: String,
    /// When the session ends at the latest.
    pub expires_at: String,
    pub user_agent: String,
    pub ip: String,
    /// True for the session of the token that asked.
    pub current: bool,
    /// Set for ended sessions (listed with `include_revoked=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// Why it ended, e.g. `logout` or `refresh_token_reused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<Session>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionListQuery {
    /// Also list sessions ended in the last 30 days.
    #[serde(default)]
    pub include_revoked: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeSessionsRequest {
    /// Session ids, at most 100.
    #[schema(max_items = 100)]
    pub session_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokeSessionsResponse {
    /// How many of the given sessions were active and are now ended.
    pub revoked: i32,
}

/// Applies the per-client-address limit of the auth routes.
pub(crate) async fn limit(state: &AppState, context: &RequestContext) -> Result<(), ApiError> {
    match state.rate_limiter.hit(&context.client_ip).await {
        Decision::Allowed => Ok(()),
        Decision::Limited(retry_after) => {
            state.metrics.rate_limited();
            Err(ApiError::TooManyRequests {
                detail: "too many requests from this address; slow down".to_owned(),
                retry_after,
            })
        }
    }
}

pub(crate) fn client(context: &RequestContext) -> Option<pb::ClientInfo> {
    Some(pb::ClientInfo {
        user_agent: context.user_agent.clone(),
        ip: context.client_ip.clone(),
    })
}

/// Token answers must not be cached anywhere (RFC 6749 §5.1).
fn no_store(status: actix_web::http::StatusCode) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::build(status);
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    response
}

/// Create an account and its first session.
#[utoipa::path(
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and logged in", body = RegisterResponse),
        (status = 409, description = "Username or email taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A dependency is down", body = Problem, content_type = "application/problem+json"),
        BodyErrors,
    )
)]
#[post("/api/auth/register")]
pub async fn register(
    state: State,
    context: RequestContext,
    body: JsonBody<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    limit(&state, &context).await?;
    let body = body.into_inner();
    let request = context.anonymous_call().request(pb::RegisterRequest {
        username: body.username,
        email: body.email,
        password: body.password,
        client: client(&context),
    });
    let answer = state.answer("auth", state.upstreams.auth.clone().register(request).await)?;
    let (Some(user), Some(tokens)) = (answer.user, answer.tokens) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "auth-service answered without user or tokens"
        )));
    };
    Ok(
        no_store(actix_web::http::StatusCode::CREATED).json(RegisterResponse {
            user: user.into(),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            token_type: tokens.token_type,
            expires_in: tokens.expires_in,
            refresh_expires_in: tokens.refresh_expires_in,
        }),
    )
}

/// Exchange credentials for a token pair: JSON, form fields or HTTP Basic.
#[utoipa::path(
    tag = "auth",
    request_body(content(
        (LoginRequest = "application/json"),
        (LoginRequest = "application/x-www-form-urlencoded"),
    ), description = "Or no body and `Authorization: Basic`"),
    security((), ("basic" = [])),
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 400, description = "Malformed body or Basic header", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong credentials (one answer for every cause)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither JSON nor a form", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing or malformed fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Throttled (address or account)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A dependency is down or hashing is saturated", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/auth/login")]
pub async fn login(
    state: State,
    context: RequestContext,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    limit(&state, &context).await?;
    let body = read_body(payload, state.body_limit).await?;
    let credentials = credentials(&request, &body)?;
    let call = context.anonymous_call().request(pb::LoginRequest {
        username: credentials.username,
        password: credentials.password,
        client: client(&context),
    });
    let answer = state
        .answer("auth", state.upstreams.auth.clone().login(call).await)
        .map_err(|error| match error {
            ApiError::Unauthorized { detail, .. } => ApiError::Unauthorized {
                detail,
                challenge: Challenge::Credentials,
            },
            other => other,
        })?;
    let tokens = answer.tokens.ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!("auth-service answered without tokens"))
    })?;
    Ok(no_store(actix_web::http::StatusCode::OK).json(TokenPair::from(tokens)))
}

/// Exchange a refresh token (in the body or as `Authorization: Bearer`) for a new pair.
#[utoipa::path(
    tag = "auth",
    request_body(content = RefreshRequest, description = "Or no body and `Authorization: Bearer <refresh token>`"),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A new pair; the used refresh token is dead", body = TokenPair),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Invalid, expired or reused refresh token (reuse ends the session)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing field", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A dependency is down", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/auth/refresh")]
pub async fn refresh(
    state: State,
    context: RequestContext,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    limit(&state, &context).await?;
    let body = read_body(payload, state.body_limit).await?;
    let refresh_token = if body.is_empty() {
        request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(token_verifier::bearer_token)
            .map(ToOwned::to_owned)
            .ok_or_else(|| {
                ApiError::invalid_token("send the refresh token in the body or as a Bearer token")
            })?
    } else {
        require_json(&request)?;
        parse_json::<RefreshRequest>(&body)?.refresh_token
    };
    let call = context.anonymous_call().request(pb::RefreshRequest {
        refresh_token,
        client: client(&context),
    });
    let answer = state.answer("auth", state.upstreams.auth.clone().refresh(call).await)?;
    let tokens = answer.tokens.ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!("auth-service answered without tokens"))
    })?;
    Ok(no_store(actix_web::http::StatusCode::OK).json(TokenPair::from(tokens)))
}

/// End the caller's session.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Session ended"),
        TokenErrors,
    )
)]
#[post("/api/auth/logout")]
pub async fn logout(state: State, caller: Caller) -> Result<HttpResponse, ApiError> {
    let call = caller.call().request(pb::LogoutRequest {});
    state.answer("auth", state.upstreams.auth.clone().logout(call).await)?;
    Ok(HttpResponse::NoContent().finish())
}

/// End every session of the caller.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session ended"),
        TokenErrors,
    )
)]
#[post("/api/auth/logout-all")]
pub async fn logout_all(state: State, caller: Caller) -> Result<HttpResponse, ApiError> {
    let call = caller.call().request(pb::LogoutAllRequest {});
    state.answer("auth", state.upstreams.auth.clone().logout_all(call).await)?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's sessions, newest first.
#[utoipa::path(
    tag = "auth",
    params(SessionListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The sessions", body = SessionList),
        (status = 422, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        TokenErrors,
    )
)]
#[get("/api/auth/sessions")]
pub async fn list_sessions(
    state: State,
    caller: Caller,
    query: web::Query<SessionListQuery>,
) -> Result<web::Json<SessionList>, ApiError> {
    let call = caller.call().request(pb::ListSessionsRequest {
        include_revoked: query.include_revoked,
    });
    let answer = state.answer(
        "auth",
        state.upstreams.auth.clone().list_sessions(call).await,
    )?;
    Ok(web::Json(SessionList {
        sessions: answer
            .sessions
            .into_iter()
            .map(|session| Session {
                created_at: rfc3339(session.created_at.as_ref()),
                last_used_at: rfc3339(session.last_used_at.as_ref()),
                expires_at: rfc3339(session.expires_at.as_ref()),
                revoked_at: session.revoked_at.as_ref().map(|at| rfc3339(Some(at))),
                revoked_reason: Some(session.revoked_reason).filter(|reason| !reason.is_empty()),
                id: session.id,
                user_agent: session.user_agent,
                ip: session.ip,
                current: session.current,
            })
            .collect(),
    }))
}

/// End one of the caller's sessions.
#[utoipa::path(
    tag = "auth",
    params(("id" = String, Path, description = "Session id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Session ended"),
        (status = 404, description = "No such active session of the caller", body = Problem, content_type = "application/problem+json"),
        TokenErrors,
    )
)]
#[delete("/api/auth/sessions/{id}")]
pub async fn delete_session(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound("no such active session".to_owned());
    let id = id.into_inner();
    if !is_uuid(&id) {
        return Err(not_found());
    }
    let call = caller.call().request(pb::RevokeSessionsRequest {
        session_ids: vec![id],
    });
    let answer = state.answer(
        "auth",
        state.upstreams.auth.clone().revoke_sessions(call).await,
    )?;
    if answer.revoked == 0 {
        return Err(not_found());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// End several of the caller's sessions; others' and unknown ids are ignored.
#[utoipa::path(
    tag = "auth",
    request_body = RevokeSessionsRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many were ended", body = RevokeSessionsResponse),
        (status = 422, description = "Invalid ids", body = Problem, content_type = "application/problem+json"),
        TokenErrors,
        BodyErrors,
    )
)]
#[post("/api/auth/sessions/revoke")]
pub async fn revoke_sessions(
    state: State,
    caller: Caller,
    body: JsonBody<RevokeSessionsRequest>,
) -> Result<web::Json<RevokeSessionsResponse>, ApiError> {
    let call = caller.call().request(pb::RevokeSessionsRequest {
        session_ids: body.into_inner().session_ids,
    });
    let answer = state.answer(
        "auth",
        state.upstreams.auth.clone().revoke_sessions(call).await,
    )?;
    Ok(web::Json(RevokeSessionsResponse {
        revoked: answer.revoked,
    }))
}

/// The credentials of a login: HTTP Basic if present, else the body as JSON or a form.
fn credentials(request: &HttpRequest, body: &[u8]) -> Result<LoginRequest, ApiError> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let malformed = || {
            ApiError::BadRequest(
                "the Authorization header must be `Basic <base64 user:password>`".to_owned(),
            )
        };
        let encoded = value
            .to_str()
            .ok()
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .map(|(_, encoded)| encoded.trim())
            .ok_or_else(malformed)?;
        let decoded = STANDARD.decode(encoded).map_err(|_| malformed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
        let (username, password) = decoded.split_once(':').ok_or_else(malformed)?;
        return Ok(LoginRequest {
            username: username.to_owned(),
            password: password.to_owned(),
        });
    }
    match media_type(request).as_deref() {
        Some("application/json") => parse_json(body),
        Some("application/x-www-form-urlencoded") => {
            serde_urlencoded::from_bytes(body).map_err(|error| ApiError::Validation {
                detail: error.to_string(),
                errors: Default::default(),
            })
        }
        _ => Err(ApiError::UnsupportedMediaType(
            "send JSON, a form (application/x-www-form-urlencoded) or HTTP Basic credentials"
                .to_owned(),
        )),
    }
}
