//! `/api/admin/*`: user administration, for callers with the admin role.

use std::sync::Arc;

use actix_web::{get, patch, web};
use proto::auth::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::is_uuid;
use super::user::User;
use super::{BodyErrors, TokenErrors};
use crate::error::{ApiError, Problem};
use crate::extract::AdminCaller;
use crate::json_body::JsonBody;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserListQuery {
    /// 20 when absent.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<User>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    /// Deactivating ends every session of the user at once.
    pub is_active: Option<bool>,
    /// Replaces the roles (`user`, `admin`); ends every session of the user.
    pub roles: Option<Vec<String>>,
}

/// Every user, oldest first, a page at a time.
#[utoipa::path(
    tag = "admin",
    params(UserListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of users", body = UserList),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        TokenErrors,
    )
)]
#[get("/api/admin/users")]
pub async fn list_users(
    state: web::Data<Arc<AppState>>,
    AdminCaller(caller): AdminCaller,
    query: web::Query<UserListQuery>,
) -> Result<web::Json<UserList>, ApiError> {
    let query = query.into_inner();
    let call = caller.call().request(pb::ListUsersRequest {
        page_size: super::books::page_size(query.limit)?,
        page_token: query.cursor.unwrap_or_default(),
    });
    let page = state.answer("auth", state.upstreams.auth.clone().list_users(call).await)?;
    Ok(web::Json(UserList {
        users: page.users.into_iter().map(User::from).collect(),
        next_cursor: Some(page.next_page_token).filter(|token| !token.is_empty()),
    }))
}

/// Activate, deactivate or change the roles of a user.
#[utoipa::path(
    tag = "admin",
    params(("id" = String, Path, description = "User id")),
    request_body = UserUpdate,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user as changed", body = User),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An admin may not deactivate or demote itself", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown role", body = Problem, content_type = "application/problem+json"),
        TokenErrors,
        BodyErrors,
    )
)]
#[patch("/api/admin/users/{id}")]
pub async fn update_user(
    state: web::Data<Arc<AppState>>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
    body: JsonBody<UserUpdate>,
) -> Result<web::Json<User>, ApiError> {
    let id = id.into_inner();
    if !is_uuid(&id) {
        return Err(ApiError::NotFound("no such user".to_owned()));
    }
    let body = body.into_inner();
    let call = caller.call().request(pb::UpdateUserRequest {
        user_id: id,
        is_active: body.is_active,
        roles: body.roles.map(|roles| pb::RoleList { roles }),
    });
    let user = state.answer("auth", state.upstreams.auth.clone().update_user(call).await)?;
    Ok(web::Json(user.into()))
}
