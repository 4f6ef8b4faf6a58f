//! The web console: the bookstore for people, under `/ui/`. Server-rendered HTML from askama
//! templates compiled into the binary, one stylesheet, no script: plain forms with a redirect
//! after each POST, so it works with JavaScript off.
//!
//! The gateway is the browser's backend: the session's tokens live in `HttpOnly`,
//! `SameSite=Strict` cookies that no script can read ([`cookies`]), refreshed by the gateway
//! before they expire ([`visit`]); every state change is a POST carrying the visit's
//! anti-forgery token from the console's own origin ([`csrf`]). Pages call auth-service and
//! books-service over gRPC like the JSON routes do, never the gateway's own HTTP API, and every
//! answer carries a strict Content-Security-Policy and `Cache-Control: no-store`.

mod account;
mod admin;
mod books;
mod cookies;
mod csrf;
mod pages;
mod sign_in;
mod visit;

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;
use visit::{Failure, see_other};

/// No script, style or form target but the console's own; no framing, no plugins, no `<base>`.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

const STYLESHEET: &str = include_str!("../../static/console.css");

/// Adds the console's routes: `/` leads a browser to it, everything else is under `/ui/`.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/")
                .wrap(security_headers())
                .route(web::get().to(to_console)),
        )
        .service(
            web::scope("/ui")
                .wrap(security_headers())
                .app_data(
                    web::FormConfig::default()
                        .limit(16 * 1024)
                        .error_handler(|error, _| {
                            Failure::Api(ApiError::BadRequest(format!(
                                "the form is malformed: {error}"
                            )))
                            .into()
                        }),
                )
                .app_data(web::QueryConfig::default().error_handler(|error, _| {
                    Failure::Api(ApiError::BadRequest(format!(
                        "the address is malformed: {error}"
                    )))
                    .into()
                }))
                .app_data(web::PathConfig::default().error_handler(|_, _| {
                    Failure::Api(ApiError::NotFound("no such page".to_owned())).into()
                }))
                .route("", web::get().to(to_console))
                .route("/", web::get().to(to_console))
                .route("/static/console.css", web::get().to(stylesheet))
                .route("/sign-in", web::get().to(sign_in::show))
                .route("/sign-in", web::post().to(sign_in::sign_in))
                .route("/register", web::get().to(sign_in::show_register))
                .route("/register", web::post().to(sign_in::register))
                .route("/sign-out", web::post().to(sign_in::sign_out))
                .route("/books", web::get().to(books::list))
                .route("/books", web::post().to(books::create))
                .route("/books/new", web::get().to(books::new))
                .route("/books/{id}", web::get().to(books::edit))
                .route("/books/{id}", web::post().to(books::update))
                .route("/books/{id}/delete", web::get().to(books::confirm_delete))
                .route("/books/{id}/delete", web::post().to(books::delete))
                .route("/sessions", web::get().to(account::sessions))
                .route(
                    "/sessions/revoke-others",
                    web::post().to(account::revoke_others),
                )
                .route("/sessions/{id}/revoke", web::post().to(account::revoke_one))
                .route("/password", web::get().to(account::password))
                .route("/password", web::post().to(account::change_password))
                .route("/admin/users", web::get().to(admin::users))
                .route("/admin/users/{id}", web::post().to(admin::update))
                .default_service(web::to(not_found)),
        );
}

/// The headers of every console answer.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Not `no-referrer`: with it, browsers send `Origin: null` on the console's own form
        // posts, which the CSRF check must then refuse.
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add(("cross-origin-opener-policy", "same-origin"))
        // Pages show the visitor's data: never kept by the browser or a proxy (the back button
        // after signing out shows nothing).
        .add((header::CACHE_CONTROL, "no-store"))
}

async fn to_console() -> HttpResponse {
    see_other("/ui/books")
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLESHEET)
}

async fn not_found(request: HttpRequest, mut visit: visit::Visit) -> HttpResponse {
    let outcome = async {
        visit.maybe_user().await?;
        let what = if request.method() == actix_web::http::Method::GET {
            "no such page"
        } else {
            "this page cannot be used that way"
        };
        Err(Failure::Api(ApiError::NotFound(what.to_owned())))
    }
    .await;
    visit.finish(outcome)
}
