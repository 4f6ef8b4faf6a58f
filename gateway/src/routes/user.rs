//! How users look in the HTTP API.

use proto::auth::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;

use super::rfc3339;

/// An account. Never carries a password or its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    /// UUID.
    pub id: String,
    pub username: String,
    pub email: String,
    /// `user`, `admin`.
    pub roles: Vec<String>,
    pub is_active: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub updated_at: String,
}

impl From<pb::User> for User {
    fn from(user: pb::User) -> Self {
        Self {
            created_at: rfc3339(user.created_at.as_ref()),
            updated_at: rfc3339(user.updated_at.as_ref()),
            id: user.id,
            username: user.username,
            email: user.email,
            roles: user.roles,
            is_active: user.is_active,
        }
    }
}
