//! One request of the console: who is visiting (from the session's cookies, refreshed when the
//! access token is near its end), the cookies the answer must set, and how an outcome becomes
//! an answer. Every page handler takes a [`Visit`] and ends with [`Visit::finish`], so that a
//! refreshed pair of tokens reaches the browser whatever the page answers: a refresh token the
//! browser never learned would be presented again later, as a replay.

use std::sync::Arc;

use actix_web::cookie::Cookie;
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};
use proto::auth::v1 as pb;
use token_verifier::{AuthFailure, Claims, Rejection, unix_now};

use super::cookies::Jar;
use super::csrf;
use super::pages::{ErrorPage, Nav, render};
use crate::error::ApiError;
use crate::extract::{RequestContext, state};
use crate::routes::auth::client;
use crate::state::AppState;
use crate::upstream::CallContext;

/// An access token with less than this left is refreshed before it is used, so that the calls
/// of the page never meet its expiry.
const REFRESH_MARGIN_SECS: i64 = 60;

/// How long an anti-forgery token lasts without a sign-in or sign-out renewing it: as long as a
/// session at most, so that a form left open in a tab still works.
const CSRF_LIFETIME_SECS: i64 = 30 * 24 * 3600;

/// The visitor, signed in: the claims of its access token, and the token for upstream calls.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub claims: Claims,
    pub token: String,
}

impl SignedIn {
    pub fn is_admin(&self) -> bool {
        self.claims.has_role("admin")
    }
}

/// What a page handler answers.
pub enum Reply {
    Page(StatusCode, String),
    /// 303 See Other: after every POST, so that reloading never submits twice.
    Redirect(String),
}

impl Reply {
    pub fn page(html: String) -> Self {
        Self::Page(StatusCode::OK, html)
    }
}

/// Why a page is not shown.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Not signed in, or no longer: to the sign-in page, then back here.
    #[error("sign-in needed")]
    SignIn,
    /// A form that did not come from this visit's console page.
    #[error("forged or stale form")]
    Forgery,
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// One request of the console.
pub struct Visit {
    pub state: Arc<AppState>,
    pub context: RequestContext,
    request: HttpRequest,
    access: Option<String>,
    refresh: Option<String>,
    csrf_cookie: Option<String>,
    /// The token forms of this page carry: the cookie's, or a new one set with the answer.
    pub csrf: String,
    user: Option<SignedIn>,
    set: Vec<Cookie<'static>>,
}

impl FromRequest for Visit {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Self::of(request).map_err(|error| Failure::Api(error).into()))
    }
}

impl Visit {
    fn of(request: &HttpRequest) -> Result<Self, ApiError> {
        let state = state(request)?;
        let secure = state.console.secure();
        let csrf_cookie = Jar::Csrf.read(request, secure);
        let mut visit = Self {
            context: RequestContext::of(request, state.trust_forwarded_for),
            access: Jar::Access.read(request, secure),
            refresh: Jar::Refresh.read(request, secure),
            csrf: csrf_cookie.clone().unwrap_or_else(csrf::new_token),
            csrf_cookie,
            request: request.clone(),
            user: None,
            set: Vec::new(),
            state,
        };
        if visit.csrf_cookie.is_none() {
            let cookie = visit.csrf_cookie(visit.csrf.clone());
            visit.set.push(cookie);
        }
        Ok(visit)
    }

    fn secure(&self) -> bool {
        self.state.console.secure()
    }

    /// The origin state changes must come from.
    pub fn origin(&self) -> String {
        let configured = &self.state.console.public_origin;
        if !configured.is_empty() {
            return configured.clone();
        }
        let host = self
            .request
            .headers()
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        format!("http://{host}")
    }

    /// The path and query of this request, to come back to after signing in.
    pub fn here(&self) -> String {
        self.request
            .uri()
            .path_and_query()
            .map_or_else(|| "/ui/books".to_owned(), ToString::to_string)
    }

    /// # Errors
    /// [`Failure::Forgery`] unless the form carried this visit's token from the console's
    /// origin.
    pub fn check_form(&self, submitted: &str) -> Result<(), Failure> {
        if csrf::allows(
            &self.request,
            self.csrf_cookie.as_deref(),
            submitted,
            &self.origin(),
        ) {
            Ok(())
        } else {
            Err(Failure::Forgery)
        }
    }

    /// Upstream calls on behalf of `user`, with its token.
    pub fn call(&self, user: &SignedIn) -> CallContext {
        CallContext {
            request_id: self.context.request_id.clone(),
            token: Some(user.token.clone()),
        }
    }

    /// The header's navigation for `user`, with `current` (`books`, `sessions`, …) marked.
    pub fn nav(&self, user: &SignedIn, current: &'static str) -> Option<Nav> {
        Some(Nav {
            csrf: self.csrf.clone(),
            is_admin: user.is_admin(),
            current,
        })
    }

    /// Upstream calls on behalf of nobody yet (sign-in, registration).
    pub fn anonymous(&self) -> CallContext {
        self.context.anonymous_call()
    }

    /// The signed-in visitor, refreshing its tokens first when the access token is missing,
    /// expired or about to expire.
    ///
    /// # Errors
    /// [`Failure::SignIn`] without a session that still works; 503 when it cannot be told.
    pub async fn user(&mut self) -> Result<SignedIn, Failure> {
        if let Some(user) = &self.user {
            return Ok(user.clone());
        }
        if let Some(token) = self.access.clone() {
            match self.state.authenticator.authenticate(&token).await {
                Ok(claims) if claims.exp - unix_now() > REFRESH_MARGIN_SECS => {
                    return Ok(self.remember(claims, token));
                }
                Ok(_) | Err(AuthFailure::Rejected(Rejection::Expired)) => {}
                Err(AuthFailure::Missing | AuthFailure::Rejected(_)) => {
                    return Err(Failure::SignIn);
                }
                Err(AuthFailure::StoreUnavailable { .. } | AuthFailure::KeysUnavailable) => {
                    // The verdict of the JSON routes, fail-open setting included.
                    let claims = crate::extract::authenticate(&self.state, &token).await?;
                    return Ok(self.remember(claims, token));
                }
            }
        }
        self.refreshed().await
    }

    /// The visitor if signed in, `None` otherwise (pages that anyone may see).
    ///
    /// # Errors
    /// 503 when it cannot be told.
    pub async fn maybe_user(&mut self) -> Result<Option<SignedIn>, Failure> {
        match self.user().await {
            Ok(user) => Ok(Some(user)),
            Err(Failure::SignIn) => Ok(None),
            Err(other) => Err(other),
        }
    }

    async fn refreshed(&mut self) -> Result<SignedIn, Failure> {
        let Some(refresh_token) = self.refresh.clone() else {
            return Err(Failure::SignIn);
        };
        let call = self.anonymous().request(pb::RefreshRequest {
            refresh_token,
            client: client(&self.context),
        });
        let answer = self.state.upstreams.auth.clone().refresh(call).await;
        let pair = match answer {
            Ok(response) => response.into_inner().tokens.unwrap_or_default(),
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                return Err(Failure::SignIn);
            }
            Err(status) => return Err(self.state.refusal("auth", status).into()),
        };
        self.keep(&pair);
        let claims = crate::extract::authenticate(&self.state, &pair.access_token).await?;
        Ok(self.remember(claims, pair.access_token))
    }

    fn remember(&mut self, claims: Claims, token: String) -> SignedIn {
        let user = SignedIn { claims, token };
        self.user = Some(user.clone());
        user
    }

    /// Keeps a new pair of tokens in the browser.
    fn keep(&mut self, pair: &pb::TokenPair) {
        let secure = self.secure();
        self.access = Some(pair.access_token.clone());
        self.refresh = Some(pair.refresh_token.clone());
        self.set
            .push(Jar::Access.set(pair.access_token.clone(), pair.expires_in, secure));
        self.set.push(Jar::Refresh.set(
            pair.refresh_token.clone(),
            pair.refresh_expires_in,
            secure,
        ));
    }

    /// Starts a session in the browser with `pair`, under a new anti-forgery token (a token
    /// planted before sign-in must not survive it).
    pub fn start_session(&mut self, pair: &pb::TokenPair) {
        self.keep(pair);
        self.rotate_csrf();
    }

    /// Forgets the session in the browser (signing out), under a new anti-forgery token.
    pub fn end_session(&mut self) {
        self.forget_tokens();
        self.rotate_csrf();
    }

    /// Removes the token cookies the browser sent: their session is over.
    fn forget_tokens(&mut self) {
        let secure = self.secure();
        self.user = None;
        if self.access.take().is_some() {
            self.set.push(Jar::Access.clear(secure));
        }
        if self.refresh.take().is_some() {
            self.set.push(Jar::Refresh.clear(secure));
        }
    }

    fn rotate_csrf(&mut self) {
        self.csrf = csrf::new_token();
        let cookie = self.csrf_cookie(self.csrf.clone());
        self.set.push(cookie);
    }

    fn csrf_cookie(&self, token: String) -> Cookie<'static> {
        Jar::Csrf.set(token, CSRF_LIFETIME_SECS, self.secure())
    }

    /// The answer for `outcome`, with the cookies this visit set.
    pub fn finish(mut self, outcome: Result<Reply, Failure>) -> HttpResponse {
        let mut response = match outcome {
            Ok(Reply::Page(status, html)) => html_response(status, html),
            Ok(Reply::Redirect(location)) => see_other(&location),
            Err(Failure::SignIn | Failure::Api(ApiError::Unauthorized { .. })) => {
                let here = self.here();
                self.forget_tokens();
                let next = if self.request.method() == actix_web::http::Method::GET {
                    here
                } else {
                    "/ui/books".to_owned()
                };
                see_other(&super::sign_in::url(&next))
            }
            Err(failure) => {
                // The header's links stay for someone signed in, so that a 403 or a 404 is not
                // a dead end.
                let nav = self.user.as_ref().and_then(|user| self.nav(user, ""));
                failure.page(nav)
            }
        };
        for cookie in self.set {
            // A cookie that cannot be written leaves the browser as it was: the next request
            // refreshes again, within the grace window.
            let _ = response.add_cookie(&cookie);
        }
        response
    }
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

pub fn html_response(status: StatusCode, html: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html)
}

impl ResponseError for Failure {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn => StatusCode::UNAUTHORIZED,
            Self::Forgery => StatusCode::FORBIDDEN,
            Self::Api(error) => error.status_code(),
        }
    }

    /// The human page of a failure (the console's counterpart of the API's problem+json),
    /// for someone not known to be signed in.
    fn error_response(&self) -> HttpResponse {
        self.page(None)
    }
}

impl Failure {
    fn page(&self, nav: Option<Nav>) -> HttpResponse {
        let status = self.status_code();
        let mut retry_after = None;
        let (title, message) = match self {
            Self::SignIn => ("Sign in needed", "Sign in to see this page.".to_owned()),
            Self::Forgery => (
                "Form expired",
                "This form came from another page or site, or it has expired. Go back, reload the page and try again.".to_owned(),
            ),
            Self::Api(error) => match error {
                ApiError::Forbidden(_) => (
                    "Not allowed",
                    "Your account does not have access to this page.".to_owned(),
                ),
                ApiError::NotFound(_) => (
                    "Not found",
                    "There is nothing here, or it is not yours.".to_owned(),
                ),
                ApiError::TooManyRequests { retry_after: wait, .. } => {
                    retry_after = Some(*wait);
                    (
                        "Too many attempts",
                        format!("Too many attempts. Wait {} and try again.", seconds(*wait)),
                    )
                }
                ApiError::Unavailable { retry_after: wait, .. } => {
                    retry_after = Some(*wait);
                    (
                        "Temporarily unavailable",
                        format!(
                            "The bookstore cannot answer right now. Try again in {}.",
                            seconds(*wait)
                        ),
                    )
                }
                ApiError::Internal(cause) => {
                    tracing::error!(error = ?cause, "internal error");
                    (
                        "Something went wrong",
                        "Something went wrong on our side. Try again; if it keeps happening, quote the request id below.".to_owned(),
                    )
                }
                ApiError::PayloadTooLarge { .. } => ("Too large", "That form is too large.".to_owned()),
                ApiError::Validation { detail, .. }
                | ApiError::BadRequest(detail)
                | ApiError::Conflict(detail)
                | ApiError::PreconditionFailed(detail)
                | ApiError::UnsupportedMediaType(detail) => ("That did not work", sentence(detail)),
                ApiError::Unauthorized { .. } => ("Sign in needed", "Sign in to see this page.".to_owned()),
                ApiError::MethodNotAllowed { .. } => (
                    "Not here",
                    "This page cannot be used that way.".to_owned(),
                ),
            },
        };
        let page = ErrorPage {
            nav,
            title,
            message: &message,
            status: status.as_u16(),
            request_id: crate::request_id::current().unwrap_or_default(),
            retry: retry_after.is_some(),
        };
        let mut response = html_response(status, render(&page));
        if let Some(wait) = retry_after
            && let Ok(value) = header::HeaderValue::from_str(&wait.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// "1 second", "30 seconds", "2 minutes".
pub fn seconds(wait: u64) -> String {
    match wait {
        1 => "1 second".to_owned(),
        n if n < 120 => format!("{n} seconds"),
        n => format!("{} minutes", n.div_ceil(60)),
    }
}

/// An upstream detail as a sentence: capitalised, with a full stop.
fn sentence(detail: &str) -> String {
    let mut chars = detail.chars();
    let mut text: String = chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}
