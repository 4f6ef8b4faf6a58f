//! Failed-login throttling per account and per account + client (DESIGN §5), counted in the
//! auth database so that every auth-service instance shares it and login needs no Redis.
//!
//! Keys do not reveal whether an account exists: an unknown login name is throttled exactly
//! like a known one.

use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};
use database::AnyConnection;

use crate::config::ThrottleSettings;
use crate::db::login_attempts;
use crate::error::AuthError;

/// The two counters one attempt is charged to.
pub struct AttemptKeys {
    account: String,
    client: String,
}

impl AttemptKeys {
    /// For a login: the account is the user's id when the name is known, the name's key
    /// otherwise; the client is the end client's address.
    pub fn for_login(user_id: Option<&str>, login_key: &str, ip: &str) -> Self {
        let account = match user_id {
            Some(id) => format!("account:{id}"),
            None => format!("unknown:{login_key}"),
        };
        Self {
            client: format!("{account}|ip:{ip}"),
            account,
        }
    }

    /// For a password change: the client is the session that asks.
    pub fn for_session(user_id: &str, session_id: &str) -> Self {
        let account = format!("account:{user_id}");
        Self {
            client: format!("{account}|session:{session_id}"),
            account,
        }
    }
}

/// # Errors
/// [`AuthError::Throttled`] when either counter is at its limit, with the time until its
/// window ends.
pub fn check(
    conn: &mut AnyConnection,
    keys: &AttemptKeys,
    settings: &ThrottleSettings,
    now: NaiveDateTime,
) -> Result<(), AuthError> {
    let rows = login_attempts::find_many(conn, &[&keys.account, &keys.client])?;
    let mut retry_after: Option<TimeDelta> = None;
    for row in rows {
        let (limit, window) = limits(row.key == keys.account, settings);
        let ends = row
            .window_started_at
            .checked_add_signed(window)
            .unwrap_or(NaiveDateTime::MAX);
        if i64::from(row.failures) >= i64::from(limit) && ends > now {
            let wait = ends - now;
            retry_after = Some(retry_after.map_or(wait, |other| other.max(wait)));
        }
    }
    match retry_after {
        None => Ok(()),
        Some(wait) => Err(AuthError::Throttled {
            retry_after: wait.to_std().unwrap_or(Duration::from_secs(1)),
        }),
    }
}

/// Counts one failed attempt on both counters.
///
/// # Errors
/// Database errors.
pub fn record_failure(
    conn: &mut AnyConnection,
    keys: &AttemptKeys,
    settings: &ThrottleSettings,
    now: NaiveDateTime,
) -> Result<(), AuthError> {
    for (key, is_account) in [(&keys.account, true), (&keys.client, false)] {
        let (_, window) = limits(is_account, settings);
        let floor = now.checked_sub_signed(window).unwrap_or(NaiveDateTime::MIN);
        login_attempts::record_failure(conn, key, floor, now)?;
    }
    Ok(())
}

/// Forgets the client's failures after it proved to know the password. The account counter
/// stays: it is what bounds an attack spread over many addresses.
///
/// # Errors
/// Database errors.
pub fn forget_client(conn: &mut AnyConnection, keys: &AttemptKeys) -> Result<(), AuthError> {
    Ok(login_attempts::clear(conn, &keys.client)?)
}

/// The longest window: rows that started before `now` minus this are useless.
pub fn longest_window(settings: &ThrottleSettings) -> TimeDelta {
    limits(true, settings).1.max(limits(false, settings).1)
}

fn limits(is_account: bool, settings: &ThrottleSettings) -> (u32, TimeDelta) {
    let (limit, secs) = if is_account {
        (settings.account_max_failures, settings.account_window_secs)
    } else {
        (settings.client_max_failures, settings.client_window_secs)
    };
    let window = i64::try_from(secs)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .unwrap_or(TimeDelta::MAX);
    (limit, window)
}
