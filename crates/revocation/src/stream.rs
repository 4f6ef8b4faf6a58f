//! The revocation stream `<prefix>revocations`: every entry auth-service publishes is also
//! appended here, so that a [`Replica`](crate::Replica) can load the live revocations and then
//! follow new ones, replaying from its last id after an interruption. Entries older than the
//! longest-lived revocation are trimmed as new ones are appended; each field is a string:
//! `kind` (`token`, `session` or `user`), `id`, `not_before` (cut-offs only) and `expires_at`.

use std::collections::HashMap;
use std::time::Duration;

use crate::{Entry, Revocation, StoreError};

/// Entries as Redis returns them from `XRANGE` (and within `XREAD`): id, then fields.
pub(crate) type StreamEntries = Vec<(String, HashMap<String, String>)>;

pub(crate) fn key(prefix: &str) -> String {
    format!("{prefix}revocations")
}

/// Queues an `XADD` of `entry` that also trims entries appended more than `retention` before
/// `now_ms` (approximately, as Redis trims whole nodes: never more).
pub(crate) fn append(
    pipe: &mut redis::Pipeline,
    key: &str,
    entry: &Entry,
    now_ms: i64,
    retention: Duration,
) {
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let oldest_kept = now_ms.saturating_sub(retention_ms).max(0);
    let command = pipe
        .cmd("XADD")
        .arg(key)
        .arg("MINID")
        .arg("~")
        .arg(oldest_kept)
        .arg("*");
    match &entry.revocation {
        Revocation::Token { token_id } => command.arg("kind").arg("token").arg("id").arg(token_id),
        Revocation::Session { session_id } => {
            command.arg("kind").arg("session").arg("id").arg(session_id)
        }
        Revocation::UserCutoff {
            user_id,
            not_before,
        } => command
            .arg("kind")
            .arg("user")
            .arg("id")
            .arg(user_id)
            .arg("not_before")
            .arg(*not_before),
    }
    .arg("expires_at")
    .arg(entry.expires_at)
    .ignore();
}

/// The entry a stream item describes.
///
/// # Errors
/// [`StoreError::Corrupt`] for an item this code did not write: a verifier cannot tell what it
/// revokes, so it must not pretend to be up to date.
pub(crate) fn decode(
    stream_id: &str,
    fields: &HashMap<String, String>,
) -> Result<Entry, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("revocation stream item {stream_id}: {fields:?}"));
    let field = |name: &str| fields.get(name).ok_or_else(corrupt);
    let number = |name: &str| field(name)?.parse::<i64>().map_err(|_| corrupt());
    let id = field("id")?.clone();
    let revocation = match field("kind")?.as_str() {
        "token" => Revocation::Token { token_id: id },
        "session" => Revocation::Session { session_id: id },
        "user" => Revocation::UserCutoff {
            user_id: id,
            not_before: number("not_before")?,
        },
        _ => return Err(corrupt()),
    };
    Ok(Entry {
        revocation,
        expires_at: number("expires_at")?,
    })
}
