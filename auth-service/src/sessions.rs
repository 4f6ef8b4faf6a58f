//! Logins and the life of a session: refresh rotation with its grace window and theft
//! detection (docs/architecture.md, "The grace window for refresh"), logout, listing and revoking sessions.

use chrono::{DateTime, NaiveDateTime, SubsecRound, TimeDelta, Utc};
use database::{AnyConnection, write_transaction};
use secrecy::SecretString;
use token_verifier::TokenType;

use crate::caller::Caller;
use crate::db::sessions::{NewSession, Session};
use crate::db::users::User;
use crate::db::{sessions, users};
use crate::domain::{
    ClientInfo, MAX_PASSWORD_BYTES, Roles, email_key, has_control_chars, login_key,
};
use crate::error::{AuthError, FieldErrors};
use crate::revocation::{self, Pending, RevokeReason};
use crate::state::AppState;
use crate::throttle::{self, AttemptKeys, Reservation};
use crate::tokens::TokenPair;

/// Ended sessions stay visible in the session list for this long.
const ENDED_SESSIONS_SHOWN_FOR: TimeDelta = TimeDelta::days(30);
/// Upper bound of a login name (an email address can be 254 bytes).
const MAX_LOGIN_BYTES: usize = 254;

/// The outcome of a refresh transaction; theft is an outcome, not an error, because its
/// revocation must commit.
enum Refreshed {
    /// The session's new tokens (rotated, or the access token alone within the grace window),
    /// its user's roles as read then, and when they were issued.
    Issued(Box<Session>, Roles, DateTime<Utc>),
    Theft(Pending),
}

impl AppState {
    /// Checks a login name and password and opens a session.
    ///
    /// The attempt is charged to the throttle before the hash runs; the session is opened only
    /// if, once the hash matched, the account still holds that very hash and is active, read
    /// in the transaction that writes the session. A login racing a password change, a
    /// deactivation or a role change is thereby ordered before it (and its session revoked by
    /// it) or after it (and refused, or signed with the new roles).
    ///
    /// # Errors
    /// [`AuthError::InvalidCredentials`] for every kind of failure, [`AuthError::Throttled`]
    /// after too many failures, [`AuthError::InvalidInput`] for malformed fields.
    pub async fn login(
        &self,
        login: &str,
        password: String,
        client: ClientInfo,
    ) -> Result<(User, TokenPair), AuthError> {
        let outcome = self.attempt_login(login, password, client).await;
        self.metrics.login(&outcome);
        outcome
    }

    async fn attempt_login(
        &self,
        login: &str,
        password: String,
        client: ClientInfo,
    ) -> Result<(User, TokenPair), AuthError> {
        let mut errors = FieldErrors::default();
        if login.trim().is_empty() || login.len() > MAX_LOGIN_BYTES || has_control_chars(login) {
            errors.add("username", "must be a username or email address");
        }
        if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
            errors.add(
                "password",
                format!("must be 1 to {MAX_PASSWORD_BYTES} bytes"),
            );
        }
        errors.into_result()?;
        let password = SecretString::from(password);

        // Usernames cannot contain '@', so a name with one is an email address.
        let by_email = login.contains('@');
        let key = if by_email {
            email_key(login)
        } else {
            login_key(login)
        };
        let throttle = self.throttle.clone();
        let ip = client.ip.clone();
        let (user, reservation) = self
            .db
            .run(move |conn| -> Result<_, AuthError> {
                let user = users::find_by_login(conn, &key, by_email)?;
                let keys = AttemptKeys::for_login(user.as_ref().map(|u| u.id.as_str()), &key, &ip);
                let reservation = throttle::reserve(conn, keys, &throttle, Utc::now().naive_utc())?;
                Ok((user, reservation))
            })
            .await?;

        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let password_ok = self.judge(password, hash, reservation).await?;
        let (Some(user), Some(reservation)) = (user, password_ok) else {
            return Err(AuthError::InvalidCredentials);
        };
        let max_ttl = self.tokens.settings().session_max_ttl_secs;
        let (session, user, issued_at) = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| -> Result<_, AuthError> {
                    let current = users::find_for_share(conn, &user.id)?
                        .filter(|current| {
                            current.is_active && current.password_hash == user.password_hash
                        })
                        .ok_or(AuthError::InvalidCredentials)?;
                    reservation.succeeded(conn)?;
                    let issued_at = revocation::issue_time(Utc::now(), &current);
                    let session = start_session(conn, &current, &client, issued_at, max_ttl)?;
                    Ok((session, current, issued_at))
                })
            })
            .await?;
        let pair = self
            .tokens
            .pair(&session, &Roles::from_stored(&user.roles), issued_at)?;
        Ok((user, pair))
    }

    /// Checks `password` against `hash` (a dummy one for an unknown user) for an attempt
    /// charged with `reservation`: the reservation back when it matched, `None` when not
    /// (the charge stays, as the recorded failure).
    ///
    /// # Errors
    /// [`AuthError::Busy`] when the hashing pool is saturated (the charge is given back).
    pub(crate) async fn judge(
        &self,
        password: SecretString,
        hash: Option<String>,
        reservation: Reservation,
    ) -> Result<Option<Reservation>, AuthError> {
        match self.passwords.verify(password, hash).await {
            Ok(true) => Ok(Some(reservation)),
            Ok(false) => Ok(None),
            Err(error) => {
                self.db
                    .run(move |conn| reservation.not_judged(conn))
                    .await?;
                Err(error)
            }
        }
    }

    /// Exchanges a refresh token for a new pair: rotation, the grace window, theft.
    ///
    /// # Errors
    /// [`AuthError::InvalidRefreshToken`] for an invalid, expired or dead token,
    /// [`AuthError::RefreshTokenReused`] when the token was already rotated (the session is
    /// then revoked).
    pub async fn refresh(&self, token: &str, client: ClientInfo) -> Result<TokenPair, AuthError> {
        let claims = self
            .tokens
            .verify(token, TokenType::Refresh)
            .map_err(|_| AuthError::InvalidRefreshToken)?;
        let session_id = claims.sid.clone();
        let grace = TimeDelta::seconds(secs(self.tokens.settings().refresh_grace_secs));
        let ttl = self.tokens.settings().revocation_ttl();
        let outcome = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| -> Result<_, AuthError> {
                    // The user's row first, then the session's: the order in which every
                    // revoking transaction takes them, so a refresh is ordered against a
                    // deactivation or a role change, and no two transactions wait for each other.
                    let user = users::find_for_share(conn, &claims.sub)?
                        .filter(|user| user.is_active)
                        .ok_or(AuthError::InvalidRefreshToken)?;
                    let issued_at = revocation::issue_time(Utc::now(), &user);
                    let now = issued_at.naive_utc();
                    let mut session = sessions::find_for_update(conn, &claims.sid)?
                        .filter(|session| session.user_id == claims.sub && session.is_live(now))
                        .ok_or(AuthError::InvalidRefreshToken)?;
                    let rotates = claims.jti == session.refresh_jti;
                    // A tab or a retry that lost the race with its own rotation.
                    let within_grace = session.previous_refresh_jti.as_deref() == Some(&claims.jti)
                        && now - session.refreshed_at <= grace;
                    if !rotates && !within_grace {
                        let (_, pending) = revocation::revoke_sessions(
                            conn,
                            &[session],
                            RevokeReason::RefreshTokenReused,
                            now,
                            ttl,
                        )?;
                        return Ok(Refreshed::Theft(pending));
                    }
                    if rotates {
                        session.previous_refresh_jti =
                            Some(std::mem::replace(&mut session.refresh_jti, new_token_id()));
                        session.generation += 1;
                        session.refreshed_at = now;
                    }
                    session.access_jti = new_token_id();
                    session.last_used_at = now;
                    session.user_agent = client.user_agent;
                    session.ip = client.ip;
                    sessions::record_refresh(conn, &session)?;
                    Ok(Refreshed::Issued(
                        Box::new(session),
                        Roles::from_stored(&user.roles),
                        issued_at,
                    ))
                })
            })
            .await?;
        match outcome {
            Refreshed::Issued(session, roles, issued_at) => {
                self.tokens.pair(&session, &roles, issued_at)
            }
            Refreshed::Theft(pending) => {
                tracing::warn!(%session_id, "refresh token reused: session revoked");
                self.metrics.refresh_token_reuse.inc();
                self.publisher.publish(pending).await;
                Err(AuthError::RefreshTokenReused)
            }
        }
    }

    /// Ends the caller's session.
    ///
    /// # Errors
    /// Database errors.
    pub async fn logout(&self, caller: &Caller) -> Result<(), AuthError> {
        let session_id = caller.session_id.clone();
        self.revoke(&caller.user_id, move |conn, _, now, ttl| {
            let targets: Vec<Session> = sessions::find(conn, &session_id)?.into_iter().collect();
            Ok(revocation::revoke_sessions(
                conn,
                &targets,
                RevokeReason::Logout,
                now,
                ttl,
            )?)
        })
        .await
        .map(drop)
    }

    /// Ends every session of the caller and cuts off every token issued so far.
    ///
    /// # Errors
    /// Database errors.
    pub async fn logout_all(&self, caller: &Caller) -> Result<usize, AuthError> {
        self.revoke(&caller.user_id, move |conn, user, now, ttl| {
            Ok(revocation::revoke_user(
                conn,
                &user.id,
                RevokeReason::LogoutAll,
                now,
                ttl,
            )?)
        })
        .await
    }

    /// Revokes those of `ids` that are live sessions of the caller.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for malformed ids or more than 100.
    pub async fn revoke_sessions(
        &self,
        caller: &Caller,
        ids: Vec<String>,
    ) -> Result<usize, AuthError> {
        if ids.len() > 100 {
            return Err(AuthError::from(FieldErrors::single(
                "session_ids",
                "at most 100 ids",
            )));
        }
        if ids.iter().any(|id| uuid::Uuid::parse_str(id).is_err()) {
            return Err(AuthError::from(FieldErrors::single(
                "session_ids",
                "must be UUIDs",
            )));
        }
        self.revoke(&caller.user_id, move |conn, user, now, ttl| {
            let mut targets = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some(session) = sessions::find(conn, id)?
                    && session.user_id == user.id
                {
                    targets.push(session);
                }
            }
            Ok(revocation::revoke_sessions(
                conn,
                &targets,
                RevokeReason::RevokedByUser,
                now,
                ttl,
            )?)
        })
        .await
    }

    /// The caller's sessions, newest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_sessions(
        &self,
        caller: &Caller,
        include_ended: bool,
    ) -> Result<Vec<Session>, AuthError> {
        let user_id = caller.user_id.clone();
        self.db
            .run(move |conn| -> Result<_, AuthError> {
                let now = Utc::now().naive_utc();
                Ok(sessions::list_for_user(
                    conn,
                    &user_id,
                    include_ended,
                    now,
                    now - ENDED_SESSIONS_SHOWN_FOR,
                )?)
            })
            .await
    }

    /// Runs a change to `user_id`'s account or sessions that revokes tokens, in a write
    /// transaction that holds the user's row from the start, then publishes its revocations.
    /// `change` gets the row as it is now and the time, read once the row is held.
    ///
    /// Holding the row orders the change against every login and refresh of the user (they
    /// hold it too while they decide), and taking it before any session row is the one lock
    /// order of the service: no two of its transactions can wait for each other.
    ///
    /// # Errors
    /// [`AuthError::UserNotFound`], or what `change` returns (nothing is written then).
    pub(crate) async fn revoke<T, F>(&self, user_id: &str, change: F) -> Result<T, AuthError>
    where
        F: FnOnce(
                &mut AnyConnection,
                &User,
                NaiveDateTime,
                std::time::Duration,
            ) -> Result<(T, Pending), AuthError>
            + Send
            + 'static,
        T: Send + 'static,
    {
        let ttl = self.tokens.settings().revocation_ttl();
        let user_id = user_id.to_owned();
        let (outcome, pending) = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let user =
                        users::find_for_update(conn, &user_id)?.ok_or(AuthError::UserNotFound)?;
                    // To the microsecond, as PostgreSQL keeps it: what is returned is what is stored.
                    change(conn, &user, Utc::now().naive_utc().trunc_subsecs(6), ttl)
                })
            })
            .await?;
        self.publisher.publish(pending).await;
        Ok(outcome)
    }
}

/// Opens a session for `user` and returns its row.
///
/// # Errors
/// Database errors.
pub(crate) fn start_session(
    conn: &mut AnyConnection,
    user: &User,
    client: &ClientInfo,
    now: DateTime<Utc>,
    max_ttl_secs: u64,
) -> diesel::QueryResult<Session> {
    let at = now.naive_utc();
    let expires_at = at
        .checked_add_signed(TimeDelta::seconds(secs(max_ttl_secs)))
        .unwrap_or(NaiveDateTime::MAX);
    let session = Session {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user.id.clone(),
        refresh_jti: new_token_id(),
        previous_refresh_jti: None,
        generation: 0,
        refreshed_at: at,
        access_jti: new_token_id(),
        created_at: at,
        last_used_at: at,
        expires_at,
        revoked_at: None,
        revoked_reason: None,
        user_agent: client.user_agent.clone(),
        ip: client.ip.clone(),
    };
    sessions::insert(
        conn,
        &NewSession {
            id: &session.id,
            user_id: &session.user_id,
            refresh_jti: &session.refresh_jti,
            generation: session.generation,
            refreshed_at: session.refreshed_at,
            access_jti: &session.access_jti,
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            expires_at: session.expires_at,
            user_agent: &session.user_agent,
            ip: &session.ip,
        },
    )?;
    Ok(session)
}

fn new_token_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Durations from settings, which `Settings::validate` bounds to a few years.
fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
