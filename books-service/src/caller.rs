//! Who is calling: the access token in the `authorization` metadata, verified against
//! auth-service's published keys and the revocation store on every call.

use token_verifier::{AuthFailure, bearer_from_metadata};
use tonic::metadata::MetadataMap;

use crate::error::BooksError;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub is_admin: bool,
}

impl AppState {
    /// # Errors
    /// Unauthenticated for a missing, invalid or revoked token; unavailable when revocation
    /// cannot be checked.
    pub async fn authenticate(&self, metadata: &MetadataMap) -> Result<Caller, BooksError> {
        let token = bearer_from_metadata(metadata).ok_or(AuthFailure::Missing)?;
        let claims = self.auth.authenticate(token).await?;
        Ok(Caller {
            is_admin: claims.has_role("admin"),
            user_id: claims.sub,
        })
    }
}
