//! The revocation stream `<prefix>revocations`: every entry auth-service publishes is also
//! appended here, so that a [`Replica`](crate::Replica) can load the live revocations and then
//! follow new ones, replaying from its last id after an interruption. Entries older than the
//! longest-lived revocation are trimmed as new ones are appended; each field is a string:
//! `kind` (`token`, `session` or `user`), `id`, `not_before_ms` (cut-offs only, in milliseconds)
//! and `expires_at` (seconds).

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
            not_before_ms,
        } => command
            .arg("kind")
            .arg("user")
            .arg("id")
            .arg(user_id)
            .arg("not_before_ms")
            .arg(*not_before_ms),
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
            not_before_ms: match fields.get("not_before_ms") {
                Some(_) => number("not_before_ms")?,
                // Written by auth-services from before cut-offs had milliseconds (whole
                // seconds), which can still be in a stream while such a version runs.
                None => number("not_before")?.saturating_mul(1_000),
            },
        },
        _ => return Err(corrupt()),
    };
    Ok(Entry {
        revocation,
        expires_at: number("expires_at")?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_cut_off_is_read_in_milliseconds_and_whole_seconds_from_older_writers() {
        for (item, not_before_ms) in [
            (
                fields(&[
                    ("kind", "user"),
                    ("id", "u1"),
                    ("not_before_ms", "1764590000500"),
                    ("expires_at", "1764591000"),
                ]),
                1_764_590_000_500,
            ),
            (
                fields(&[
                    ("kind", "user"),
                    ("id", "u1"),
                    ("not_before", "1764590000"),
                    ("expires_at", "1764591000"),
                ]),
                1_764_590_000_000,
            ),
        ] {
            let entry = decode("1-0", &item).unwrap();
            assert_eq!(
                entry.revocation,
                Revocation::UserCutoff {
                    user_id: "u1".into(),
                    not_before_ms
                }
            );
        }
    }

    #[test]
    fn an_item_this_code_did_not_write_is_corrupt() {
        for item in [
            fields(&[("kind", "user"), ("id", "u1"), ("expires_at", "1")]),
            fields(&[
                ("kind", "user"),
                ("id", "u1"),
                ("not_before_ms", "x"),
                ("expires_at", "1"),
            ]),
            fields(&[("kind", "group"), ("id", "g1"), ("expires_at", "1")]),
        ] {
            assert!(
                matches!(decode("1-0", &item), Err(StoreError::Corrupt(_))),
                "{item:?}"
            );
        }
    }
}
