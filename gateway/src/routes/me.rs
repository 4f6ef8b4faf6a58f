//! `/api/me`: the caller's own account.

use std::sync::Arc;

use actix_web::{HttpResponse, get, put, web};
use proto::auth::v1 as pb;
use serde::Deserialize;
use utoipa::ToSchema;

use super::user::User;
use super::{BodyErrors, TokenErrors};
use crate::error::{ApiError, Problem};
use crate::extract::Caller;
use crate::json_body::JsonBody;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(min_length = 1, max_length = 72)]
    pub current_password: String,
    /// Same policy as at registration.
    #[schema(max_length = 72)]
    pub new_password: String,
}

/// The caller's account.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = User),
        TokenErrors,
    )
)]
#[get("/api/me")]
pub async fn get_me(
    state: web::Data<Arc<AppState>>,
    caller: Caller,
) -> Result<web::Json<User>, ApiError> {
    let call = caller.call().request(pb::GetUserRequest::default());
    let user = state.answer("auth", state.upstreams.auth.clone().get_user(call).await)?;
    Ok(web::Json(user.into()))
}

/// Change the caller's password; every other session of the caller ends.
#[utoipa::path(
    tag = "me",
    request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed"),
        (status = 422, description = "Wrong current password or a new one the policy refuses", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong current passwords", body = Problem, content_type = "application/problem+json"),
        TokenErrors,
        BodyErrors,
    )
)]
#[put("/api/me/password")]
pub async fn change_password(
    state: web::Data<Arc<AppState>>,
    caller: Caller,
    body: JsonBody<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let call = caller.call().request(pb::ChangePasswordRequest {
        current_password: body.current_password,
        new_password: body.new_password,
    });
    state.answer(
        "auth",
        state.upstreams.auth.clone().change_password(call).await,
    )?;
    Ok(HttpResponse::NoContent().finish())
}
