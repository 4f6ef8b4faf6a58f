//! Every route of the public API (the README's route table), registered once: actix serves them and utoipa
//! documents them from the same declarations, so `/openapi.json` cannot drift from the code.

pub mod admin;
pub mod auth;
pub mod books;
pub mod health;
pub mod me;
pub mod user;
pub mod wellknown;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::error::Problem;
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every documented route.
pub fn configure(config: &mut ServiceConfig<'_>) {
    config
        .service(auth::register)
        .service(auth::login)
        .service(auth::refresh)
        .service(auth::logout)
        .service(auth::logout_all)
        .service(auth::list_sessions)
        .service(auth::delete_session)
        .service(auth::revoke_sessions)
        .service(me::get_me)
        .service(me::change_password)
        .service(books::list_books)
        .service(books::create_book)
        .service(books::get_book)
        .service(books::replace_book)
        .service(books::patch_book)
        .service(books::delete_book)
        .service(admin::list_users)
        .service(admin::update_user)
        .service(wellknown::jwks)
        .service(health::healthz)
        .service(health::readyz)
        .service(health::docs);
}

/// What every route that needs an access token may answer besides its own statuses.
// Never built: the type exists to document responses once for every route.
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
pub enum TokenErrors {
    /// Missing, malformed, expired, wrong-type or revoked access token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// A dependency the request needs is down (the revocation store included).
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// What every route taking a JSON body may answer about the body itself.
// Never built: the type exists to document responses once for every route.
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
pub enum BodyErrors {
    /// The body is not valid JSON.
    #[response(status = 400, content_type = "application/problem+json")]
    Malformed(Problem),
    /// The body is over the configured limit.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    NotJson(Problem),
}

/// The document's header; the paths come from [`configure`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Bookstore API",
        description = "The public HTTP API of the bookstore: accounts and sessions, books, \
                       administration. Errors are RFC 9457 problem documents.",
        version = "1.0.0"
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts, tokens and sessions"),
        (name = "me", description = "The caller's own account"),
        (name = "books", description = "The caller's books"),
        (name = "admin", description = "User administration (admin role)"),
        (name = "operations", description = "Health, metrics, keys and documentation")
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the protected routes refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// A protobuf timestamp as RFC 3339 in UTC (microseconds, `Z`).
pub fn rfc3339(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .and_then(|t| {
            chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
        })
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

/// Whether `id` can name anything: ids are UUIDs, so anything else is simply not found.
pub fn is_uuid(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok()
}
