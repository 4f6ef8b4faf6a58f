use revocation::TokenIdentity;
use serde::{Deserialize, Serialize};

/// Which of a session's two tokens this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// Short-lived; authorises API calls.
    Access,
    /// Long-lived; only exchanged at auth-service for a new pair.
    Refresh,
}

/// The claims of every bookstore token. All are required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// User id.
    pub sub: String,
    /// Session id.
    pub sid: String,
    /// Token id.
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub typ: TokenType,
    /// Role names; empty in refresh tokens, whose holder gets fresh roles at each refresh.
    pub roles: Vec<String>,
}

impl Claims {
    /// What the revocation store decides on.
    pub fn identity(&self) -> TokenIdentity<'_> {
        TokenIdentity {
            token_id: &self.jti,
            session_id: &self.sid,
            user_id: &self.sub,
            issued_at: self.iat,
        }
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}
