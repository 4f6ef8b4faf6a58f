//! Values parsed at the boundary: once a request becomes one of these types it is valid, and
//! nothing below the gRPC layer checks it again.

mod client;
mod email;
mod password;
mod roles;
mod username;

pub use client::ClientInfo;
pub use email::{Email, email_key};
pub use password::{MAX_BYTES as MAX_PASSWORD_BYTES, NewPassword, PasswordPolicy};
pub use roles::{Role, Roles};
pub use username::{Username, login_key};

/// Control characters (NUL included) are refused in every text field: they are never
/// meaningful in these fields and some stores cannot hold them.
pub(crate) fn has_control_chars(text: &str) -> bool {
    text.chars().any(char::is_control)
}
