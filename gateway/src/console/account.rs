//! The visitor's account: where it is signed in (revoke one session, or every other), and its
//! password.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use proto::auth::v1 as pb;
use serde::Deserialize;

use super::pages::{FieldErrors, PasswordPage, SessionRow, SessionsPage, render};
use super::sign_in::CsrfForm;
use super::visit::{Failure, Reply, SignedIn, Visit};
use crate::error::ApiError;
use crate::routes::is_uuid;

async fn sessions_of(visit: &Visit, user: &SignedIn) -> Result<Vec<pb::Session>, Failure> {
    let request = visit.call(user).request(pb::ListSessionsRequest {
        include_revoked: false,
    });
    let answer = visit
        .state
        .upstreams
        .auth
        .clone()
        .list_sessions(request)
        .await;
    Ok(visit.state.answer("auth", answer)?.sessions)
}

#[derive(Deserialize)]
pub struct SessionsQuery {
    #[serde(default)]
    revoked: Option<u32>,
}

pub async fn sessions(mut visit: Visit, query: web::Query<SessionsQuery>) -> HttpResponse {
    let outcome = async {
        let user = visit.user().await?;
        let sessions = sessions_of(&visit, &user).await?;
        let notice = match query.revoked {
            Some(1) => Some("One session was signed out.".to_owned()),
            Some(n) => Some(format!("{n} sessions were signed out.")),
            None => None,
        };
        let page = SessionsPage {
            nav: visit.nav(&user, "sessions"),
            csrf: &visit.csrf,
            sessions: sessions.into_iter().map(SessionRow::from).collect(),
            notice: notice.as_deref(),
        };
        Ok::<_, Failure>(Reply::page(render(&page)))
    }
    .await;
    visit.finish(outcome)
}

async fn revoke(visit: &Visit, user: &SignedIn, ids: Vec<String>) -> Result<i32, Failure> {
    let request = visit
        .call(user)
        .request(pb::RevokeSessionsRequest { session_ids: ids });
    let answer = visit
        .state
        .upstreams
        .auth
        .clone()
        .revoke_sessions(request)
        .await;
    Ok(visit.state.answer("auth", answer)?.revoked)
}

pub async fn revoke_one(
    mut visit: Visit,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let outcome = async {
        visit.check_form(&form.csrf)?;
        let user = visit.user().await?;
        if !is_uuid(&id) || id.as_str() == user.claims.sid {
            return Err(ApiError::NotFound("no such session".to_owned()).into());
        }
        let revoked = revoke(&visit, &user, vec![id.into_inner()]).await?;
        Ok::<_, Failure>(Reply::Redirect(format!("/ui/sessions?revoked={revoked}")))
    }
    .await;
    visit.finish(outcome)
}

pub async fn revoke_others(mut visit: Visit, form: web::Form<CsrfForm>) -> HttpResponse {
    let outcome = async {
        visit.check_form(&form.csrf)?;
        let user = visit.user().await?;
        let others: Vec<String> = sessions_of(&visit, &user)
            .await?
            .into_iter()
            .filter(|session| !session.current)
            .map(|session| session.id)
            .collect();
        // RevokeSessions takes at most 100 ids a call.
        let mut revoked = 0;
        for batch in others.chunks(100) {
            revoked += revoke(&visit, &user, batch.to_vec()).await?;
        }
        Ok::<_, Failure>(Reply::Redirect(format!("/ui/sessions?revoked={revoked}")))
    }
    .await;
    visit.finish(outcome)
}

#[derive(Deserialize)]
pub struct PasswordQuery {
    #[serde(default)]
    changed: bool,
}

pub async fn password(mut visit: Visit, query: web::Query<PasswordQuery>) -> HttpResponse {
    let outcome = async {
        let user = visit.user().await?;
        let page = PasswordPage {
            nav: visit.nav(&user, "password"),
            csrf: &visit.csrf,
            errors: FieldErrors::default(),
            changed: query.changed,
        };
        Ok::<_, Failure>(Reply::page(render(&page)))
    }
    .await;
    visit.finish(outcome)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

pub async fn change_password(mut visit: Visit, form: web::Form<PasswordForm>) -> HttpResponse {
    let outcome = change_password_with(&mut visit, form.into_inner()).await;
    visit.finish(outcome)
}

async fn change_password_with(visit: &mut Visit, form: PasswordForm) -> Result<Reply, Failure> {
    visit.check_form(&form.csrf)?;
    let user = visit.user().await?;
    let request = visit.call(&user).request(pb::ChangePasswordRequest {
        current_password: form.current_password,
        new_password: form.new_password,
    });
    let answer = visit
        .state
        .upstreams
        .auth
        .clone()
        .change_password(request)
        .await;
    let errors = match visit.state.answer("auth", answer) {
        Ok(_) => return Ok(Reply::Redirect("/ui/password?changed=true".to_owned())),
        Err(ApiError::Validation { errors, .. }) => FieldErrors::new(errors),
        Err(ApiError::TooManyRequests { retry_after, .. }) => FieldErrors::one(
            "current_password",
            &format!(
                "too many wrong attempts; wait {} and try again",
                super::visit::seconds(retry_after)
            ),
        ),
        Err(other) => return Err(other.into()),
    };
    let page = PasswordPage {
        nav: visit.nav(&user, "password"),
        csrf: &visit.csrf,
        errors,
        changed: false,
    };
    Ok(Reply::Page(StatusCode::UNPROCESSABLE_ENTITY, render(&page)))
}
