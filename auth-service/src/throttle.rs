//! Failed-login throttling per account and per account + client, counted in the auth database
//! so that every auth-service instance shares it and login needs no Redis.
//!
//! An attempt is charged before its password is checked ([`reserve`]), in one transaction that
//! counts and refuses at once: N concurrent guesses are judged at most `limit` times, however
//! many instances receive them. A success gives its charge back; a wrong password keeps it.
//!
//! Keys do not reveal whether an account exists: an unknown login name is throttled exactly
//! like a known one.

use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};
use database::{AnyConnection, unique_violation, write_transaction};

use crate::config::ThrottleSettings;
use crate::db::login_attempts::{self, Charge};
use crate::error::AuthError;

/// How often a reservation is tried again after losing the race to create a counter.
const CREATE_RACES_RETRIED: usize = 2;

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

/// An attempt charged to both of its counters, to be settled once the password is judged: a
/// wrong one leaves the charge in place (it is the recorded failure).
#[must_use = "a successful attempt must give its charge back"]
pub struct Reservation {
    keys: AttemptKeys,
}

impl Reservation {
    /// The password was right: the account's charge is given back and the client's failures
    /// are forgotten. The account counter keeps earlier failures: it is what bounds an attack
    /// spread over many addresses.
    ///
    /// # Errors
    /// Database errors.
    pub fn succeeded(self, conn: &mut AnyConnection) -> Result<(), AuthError> {
        login_attempts::uncharge(conn, &self.keys.account)?;
        Ok(login_attempts::clear(conn, &self.keys.client)?)
    }

    /// The attempt was never judged (the hashing pool was saturated): both charges are given
    /// back, so that a busy server does not lock anyone out.
    ///
    /// # Errors
    /// Database errors.
    pub fn not_judged(self, conn: &mut AnyConnection) -> Result<(), AuthError> {
        login_attempts::uncharge(conn, &self.keys.account)?;
        Ok(login_attempts::uncharge(conn, &self.keys.client)?)
    }
}

/// Charges one attempt to both counters of `keys`, or to neither.
///
/// # Errors
/// [`AuthError::Throttled`] when either counter is at its limit, with the time until its
/// window ends; database errors.
pub fn reserve(
    conn: &mut AnyConnection,
    keys: AttemptKeys,
    settings: &ThrottleSettings,
    now: NaiveDateTime,
) -> Result<Reservation, AuthError> {
    let mut races = 0;
    loop {
        match write_transaction(conn, |conn| charge_both(conn, &keys, settings, now)) {
            Ok(()) => return Ok(Reservation { keys }),
            Err(Refusal::Throttled(wait)) => {
                return Err(AuthError::Throttled {
                    retry_after: wait.to_std().unwrap_or(Duration::from_secs(1)),
                });
            }
            // Two first attempts on a counter both inserted it: the loser counts again, in
            // the row the winner made.
            Err(Refusal::Database(error))
                if unique_violation(&error).is_some() && races < CREATE_RACES_RETRIED =>
            {
                races += 1;
            }
            Err(Refusal::Database(error)) => return Err(error.into()),
        }
    }
}

/// Why [`charge_both`] rolled back.
enum Refusal {
    Throttled(TimeDelta),
    Database(diesel::result::Error),
}

impl From<diesel::result::Error> for Refusal {
    fn from(error: diesel::result::Error) -> Self {
        Self::Database(error)
    }
}

fn charge_both(
    conn: &mut AnyConnection,
    keys: &AttemptKeys,
    settings: &ThrottleSettings,
    now: NaiveDateTime,
) -> Result<(), Refusal> {
    let mut wait: Option<TimeDelta> = None;
    for (key, is_account) in [(&keys.account, true), (&keys.client, false)] {
        let (limit, window) = limits(is_account, settings);
        let floor = now.checked_sub_signed(window).unwrap_or(NaiveDateTime::MIN);
        if let Charge::AtLimit { window_started_at } =
            login_attempts::charge(conn, key, limit, floor, now)?
        {
            let ends = window_started_at
                .checked_add_signed(window)
                .unwrap_or(NaiveDateTime::MAX);
            let this = ends - now;
            wait = Some(wait.map_or(this, |other| other.max(this)));
        }
    }
    match wait {
        None => Ok(()),
        Some(wait) => Err(Refusal::Throttled(wait)),
    }
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
