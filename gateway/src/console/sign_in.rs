//! Signing in, creating an account and signing out.

use actix_web::{HttpResponse, web};
use proto::auth::v1 as pb;
use serde::Deserialize;
use tonic::Code;

use super::pages::{FieldErrors, RegisterPage, SignInPage, render};
use super::visit::{Failure, Reply, Visit, seconds};
use crate::error::ApiError;
use crate::routes::auth::{client, limit};

/// The sign-in page, coming back to `next` afterwards.
pub fn url(next: &str) -> String {
    let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    format!("/ui/sign-in?{query}")
}

/// Where a sign-in may lead: a console page of this site, never elsewhere (an open redirect
/// would let a link to our sign-in page send people to a look-alike).
fn safe_next(next: &str) -> &str {
    let local = next.starts_with("/ui/") && !next.starts_with("//") && !next.contains('\\');
    if local { next } else { "/ui/books" }
}

#[derive(Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    signed_out: bool,
}

pub async fn show(mut visit: Visit, query: web::Query<SignInQuery>) -> HttpResponse {
    let outcome = async {
        // Not needed to sign in, but a broken session must not keep its cookies.
        visit.maybe_user().await?;
        let page = SignInPage {
            nav: None,
            csrf: &visit.csrf,
            next: safe_next(&query.next),
            username: "",
            error: None,
            notice: query.signed_out.then_some("You are signed out."),
        };
        Ok::<_, Failure>(Reply::page(render(&page)))
    }
    .await;
    visit.finish(outcome)
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub async fn sign_in(mut visit: Visit, form: web::Form<SignInForm>) -> HttpResponse {
    let outcome = sign_in_with(&mut visit, form.into_inner()).await;
    visit.finish(outcome)
}

async fn sign_in_with(visit: &mut Visit, form: SignInForm) -> Result<Reply, Failure> {
    visit.check_form(&form.csrf)?;
    let next = safe_next(&form.next).to_owned();
    let refused = |visit: &Visit, status, error: String| {
        let page = SignInPage {
            nav: None,
            csrf: &visit.csrf,
            next: &next,
            username: &form.username,
            error: Some(error),
            notice: None,
        };
        Reply::Page(status, render(&page))
    };
    if let Err(ApiError::TooManyRequests { retry_after, .. }) =
        limit(&visit.state, &visit.context).await
    {
        let message = format!(
            "Too many attempts. Wait {} and try again.",
            seconds(retry_after)
        );
        return Ok(refused(
            visit,
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            message,
        ));
    }
    let call = visit.anonymous().request(pb::LoginRequest {
        username: form.username.clone(),
        password: form.password.clone(),
        client: client(&visit.context),
    });
    match visit.state.upstreams.auth.clone().login(call).await {
        Ok(response) => {
            visit.start_session(&response.into_inner().tokens.unwrap_or_default());
            Ok(Reply::Redirect(next))
        }
        Err(status) => match visit.state.refusal("auth", status) {
            ApiError::Unauthorized { .. } | ApiError::Validation { .. } => Ok(refused(
                visit,
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                "Wrong username or password.".to_owned(),
            )),
            ApiError::TooManyRequests { retry_after, .. } => Ok(refused(
                visit,
                actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many failed attempts for this account. Wait {} and try again.",
                    seconds(retry_after)
                ),
            )),
            other => Err(other.into()),
        },
    }
}

pub async fn show_register(mut visit: Visit) -> HttpResponse {
    let outcome = async {
        visit.maybe_user().await?;
        let page = RegisterPage {
            nav: None,
            csrf: &visit.csrf,
            username: "",
            email: "",
            errors: FieldErrors::default(),
        };
        Ok::<_, Failure>(Reply::page(render(&page)))
    }
    .await;
    visit.finish(outcome)
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn register(mut visit: Visit, form: web::Form<RegisterForm>) -> HttpResponse {
    let outcome = register_with(&mut visit, form.into_inner()).await;
    visit.finish(outcome)
}

async fn register_with(visit: &mut Visit, form: RegisterForm) -> Result<Reply, Failure> {
    visit.check_form(&form.csrf)?;
    limit(&visit.state, &visit.context).await?;
    let call = visit.anonymous().request(pb::RegisterRequest {
        username: form.username.clone(),
        email: form.email.clone(),
        password: form.password.clone(),
        client: client(&visit.context),
    });
    let errors = match visit.state.upstreams.auth.clone().register(call).await {
        Ok(response) => {
            visit.start_session(&response.into_inner().tokens.unwrap_or_default());
            return Ok(Reply::Redirect("/ui/books".to_owned()));
        }
        Err(status) if status.code() == Code::AlreadyExists => {
            let field = if status.message().contains("email") {
                "email"
            } else {
                "username"
            };
            FieldErrors::one(field, &format!("{} is already taken", capitalised(field)))
        }
        Err(status) => match visit.state.refusal("auth", status) {
            ApiError::Validation { errors, .. } => FieldErrors::new(errors),
            other => return Err(other.into()),
        },
    };
    let page = RegisterPage {
        nav: None,
        csrf: &visit.csrf,
        username: &form.username,
        email: &form.email,
        errors,
    };
    Ok(Reply::Page(
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
        render(&page),
    ))
}

fn capitalised(field: &str) -> &'static str {
    if field == "email" {
        "This email"
    } else {
        "This username"
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn sign_out(mut visit: Visit, form: web::Form<CsrfForm>) -> HttpResponse {
    let outcome = async {
        visit.check_form(&form.csrf)?;
        // Revoked in auth-service first: clearing cookies alone would leave the tokens valid.
        if let Some(user) = visit.maybe_user().await? {
            let call = visit.call(&user).request(pb::LogoutRequest {});
            let answer = visit.state.upstreams.auth.clone().logout(call).await;
            match answer.map_err(|status| visit.state.refusal("auth", status)) {
                Ok(_) | Err(ApiError::Unauthorized { .. }) => {}
                Err(other) => return Err(other.into()),
            }
        }
        visit.end_session();
        Ok::<_, Failure>(Reply::Redirect("/ui/sign-in?signed_out=true".to_owned()))
    }
    .await;
    visit.finish(outcome)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn a_sign_in_leads_back_only_to_a_console_page() {
        assert_eq!(safe_next("/ui/books?q=dune"), "/ui/books?q=dune");
        for foreign in [
            "https://evil.example/ui/",
            "//evil.example",
            "/ui\\..\\x",
            "/api/me",
            "",
        ] {
            assert_eq!(safe_next(foreign), "/ui/books", "{foreign}");
        }
    }
}
