//! What every RPC works with. The operations themselves are implemented on [`AppState`] in
//! `accounts`, `sessions` and `caller`, one concern per module.

use std::sync::Arc;

use database::Database;

use crate::config::ThrottleSettings;
use crate::domain::PasswordPolicy;
use crate::metrics::AuthMetrics;
use crate::passwords::PasswordHasher;
use crate::revocation::Publisher;
use crate::tokens::Tokens;

pub struct AppState {
    pub db: Database,
    pub passwords: PasswordHasher,
    pub policy: PasswordPolicy,
    pub tokens: Tokens,
    pub publisher: Arc<Publisher>,
    pub throttle: ThrottleSettings,
    pub metrics: Arc<AuthMetrics>,
}
