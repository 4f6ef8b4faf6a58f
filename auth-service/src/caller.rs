//! Who is calling: the access token in the `authorization` metadata, verified with the
//! service's own keys and checked against the auth database, which is authoritative for
//! revocation (auth-service never consults the revocation store it feeds).

use chrono::Utc;
use token_verifier::{Claims, Rejection, TokenType, bearer_from_metadata};
use tonic::metadata::MetadataMap;

use crate::db::{sessions, users::User};
use crate::domain::{Role, Roles};
use crate::error::AuthError;
use crate::state::AppState;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub session_id: String,
    /// Current roles from the database (tokens carrying outdated roles are revoked anyway).
    pub roles: Roles,
    /// The caller's account as read with its session, to decide that the token is live: what
    /// GetUser answers about the caller, without reading it again.
    pub user: User,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.roles.contains(Role::Admin)
    }

    /// # Errors
    /// [`AuthError::PermissionDenied`] unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), AuthError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied)
        }
    }
}

impl AppState {
    /// # Errors
    /// [`AuthError::MissingToken`] or [`AuthError::InvalidToken`] for a token that is absent,
    /// invalid or revoked; database errors.
    pub async fn authenticate(&self, metadata: &MetadataMap) -> Result<Caller, AuthError> {
        let token = bearer_from_metadata(metadata).ok_or(AuthError::MissingToken)?;
        let claims = self
            .tokens
            .verify(token, TokenType::Access)
            .map_err(AuthError::InvalidToken)?;
        let user = self
            .live_user(&claims)
            .await?
            .ok_or(AuthError::InvalidToken(Rejection::Revoked))?;
        Ok(Caller {
            user_id: claims.sub,
            session_id: claims.sid,
            roles: Roles::from_stored(&user.roles),
            user,
        })
    }

    /// The verdict on an access token, for ValidateToken: `Ok(Err(_))` is a normal answer.
    ///
    /// # Errors
    /// Database errors only.
    pub async fn validate_token(
        &self,
        token: &str,
    ) -> Result<Result<Claims, Rejection>, AuthError> {
        let claims = match self.tokens.verify(token, TokenType::Access) {
            Ok(claims) => claims,
            Err(rejection) => return Ok(Err(rejection)),
        };
        Ok(match self.live_user(&claims).await? {
            Some(_) => Ok(claims),
            None => Err(Rejection::Revoked),
        })
    }

    /// The token's user, if the token is not revoked: its session is live, its user active,
    /// and it was issued at or after the user's cut-off.
    async fn live_user(&self, claims: &Claims) -> Result<Option<User>, AuthError> {
        let session_id = claims.sid.clone();
        let found = self
            .db
            .run(move |conn| -> Result<_, AuthError> {
                Ok(sessions::find_with_user(conn, &session_id)?)
            })
            .await?;
        let now = Utc::now().naive_utc();
        Ok(found.and_then(|(session, user)| {
            let cut_off = user
                .tokens_valid_after
                .map(|at| at.and_utc().timestamp_millis());
            let live = session.user_id == claims.sub
                && session.is_live(now)
                && user.is_active
                && cut_off.is_none_or(|cut_off| claims.issued_at_ms >= cut_off);
            live.then_some(user)
        }))
    }
}
