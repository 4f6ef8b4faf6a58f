//! What every RPC works with; the operations are in `books` and `caller`.

use database::Database;
use token_verifier::Authenticator;

pub struct AppState {
    pub db: Database,
    pub auth: Authenticator,
}
