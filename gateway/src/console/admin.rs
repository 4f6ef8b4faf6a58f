//! For administrators: every account, page by page, to activate or deactivate and to give or
//! take the admin role. Everyone else gets the 403 page (auth-service decides).

use actix_web::{HttpResponse, web};
use proto::auth::v1 as pb;
use serde::Deserialize;

use super::books::neighbours;
use super::pages::{UserRow, UsersPage, render, when};
use super::visit::{Failure, Reply, Visit};
use crate::error::ApiError;
use crate::routes::is_uuid;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UsersQuery {
    cursor: String,
    trail: Option<String>,
    changed: Option<String>,
}

pub async fn users(mut visit: Visit, query: web::Query<UsersQuery>) -> HttpResponse {
    let outcome = async {
        let user = visit.user().await?;
        let call = visit.call(&user);
        let request = call.request(pb::ListUsersRequest {
            page_size: i32::try_from(visit.state.console.page_size).unwrap_or(10),
            page_token: query.cursor.clone(),
        });
        let answer = visit.state.upstreams.auth.clone().list_users(request).await;
        let page = visit.state.answer("auth", answer)?;
        let (previous, next) = neighbours(
            "/ui/admin/users",
            &[],
            &query.cursor,
            query.trail.as_deref(),
            &page.next_page_token,
        );
        let rows = page
            .users
            .into_iter()
            .map(|account| UserRow {
                is_self: account.id == user.claims.sub,
                is_admin: account.roles.iter().any(|role| role == "admin"),
                is_active: account.is_active,
                created: when(account.created_at.as_ref()),
                id: account.id,
                username: account.username,
                email: account.email,
            })
            .collect();
        // This page without its notice, to come back to after a change.
        let mut position = Vec::new();
        if !query.cursor.is_empty() {
            position.push(("cursor", query.cursor.as_str()));
        }
        if let Some(trail) = &query.trail {
            position.push(("trail", trail.as_str()));
        }
        let here = match serde_urlencoded::to_string(&position) {
            Ok(query) if !query.is_empty() => format!("/ui/admin/users?{query}"),
            _ => "/ui/admin/users".to_owned(),
        };
        let notice = query
            .changed
            .as_deref()
            .map(|name| format!("{name} was updated."));
        let view = UsersPage {
            nav: visit.nav(&user, "users"),
            csrf: &visit.csrf,
            users: rows,
            previous,
            next,
            here: &here,
            notice: notice.as_deref(),
        };
        Ok::<_, Failure>(Reply::page(render(&view)))
    }
    .await;
    visit.finish(outcome)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UserForm {
    csrf: String,
    /// `true` or `false`; absent leaves it.
    is_active: Option<bool>,
    /// Space-separated role names; absent leaves them.
    roles: Option<String>,
    /// The users page to come back to.
    back: String,
}

pub async fn update(
    mut visit: Visit,
    id: web::Path<String>,
    form: web::Form<UserForm>,
) -> HttpResponse {
    let outcome = async {
        visit.check_form(&form.csrf)?;
        let user = visit.user().await?;
        if !is_uuid(&id) {
            return Err(ApiError::NotFound("no such user".to_owned()).into());
        }
        let call = visit.call(&user);
        let request = call.request(pb::UpdateUserRequest {
            user_id: id.into_inner(),
            is_active: form.is_active,
            roles: form.roles.as_deref().map(|names| pb::RoleList {
                roles: names.split_whitespace().map(ToOwned::to_owned).collect(),
            }),
        });
        let answer = visit
            .state
            .upstreams
            .auth
            .clone()
            .update_user(request)
            .await;
        let updated = visit.state.answer("auth", answer)?;
        let back = if form.back.starts_with("/ui/admin/users") {
            form.back.as_str()
        } else {
            "/ui/admin/users"
        };
        let separator = if back.contains('?') { '&' } else { '?' };
        let changed = serde_urlencoded::to_string([("changed", updated.username.as_str())])
            .unwrap_or_default();
        Ok::<_, Failure>(Reply::Redirect(format!("{back}{separator}{changed}")))
    }
    .await;
    visit.finish(outcome)
}
