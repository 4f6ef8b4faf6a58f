//! Logins and the life of a session: refresh rotation with its grace window and theft
//! detection (DESIGN §3), logout, listing and revoking sessions.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use database::{AnyConnection, write_transaction};
use secrecy::SecretString;
use token_verifier::TokenType;

use crate::caller::Caller;
use crate::db::sessions::{LastUse, NewSession, Session};
use crate::db::users::User;
use crate::db::{sessions, users};
use crate::domain::{
    ClientInfo, MAX_PASSWORD_BYTES, Roles, email_key, has_control_chars, login_key,
};
use crate::error::{AuthError, FieldErrors};
use crate::revocation::{self, Pending, RevokeReason};
use crate::state::AppState;
use crate::throttle::{self, AttemptKeys};
use crate::tokens::TokenPair;

/// Ended sessions stay visible in the session list for this long.
const ENDED_SESSIONS_SHOWN_FOR: TimeDelta = TimeDelta::days(30);
/// Upper bound of a login name (an email address can be 254 bytes).
const MAX_LOGIN_BYTES: usize = 254;

/// The outcome of a refresh transaction; theft is an outcome, not an error, because its
/// revocation must commit.
enum Refreshed {
    Rotated(Session, User),
    Reissued(Session, User),
    Theft(Pending),
}

impl AppState {
    /// Checks a login name and password and opens a session.
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
        let (user, attempt_keys) = self
            .db
            .run(move |conn| -> Result<_, AuthError> {
                let user = users::find_by_login(conn, &key, by_email)?;
                let keys = AttemptKeys::for_login(user.as_ref().map(|u| u.id.as_str()), &key, &ip);
                throttle::check(conn, &keys, &throttle, Utc::now().naive_utc())?;
                Ok((user, keys))
            })
            .await?;

        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let password_ok = self.passwords.verify(password, hash).await?;
        let throttle = self.throttle.clone();
        let max_ttl = self.tokens.settings().session_max_ttl_secs;
        match user {
            Some(user) if password_ok && user.is_active => {
                let (session, user) = self
                    .db
                    .run(move |conn| -> Result<_, AuthError> {
                        throttle::forget_client(conn, &attempt_keys)?;
                        let session = start_session(conn, &user, &client, Utc::now(), max_ttl)?;
                        Ok((session, user))
                    })
                    .await?;
                let pair =
                    self.tokens
                        .pair(&session, &Roles::from_stored(&user.roles), Utc::now())?;
                Ok((user, pair))
            }
            _ => {
                self.db
                    .run(move |conn| {
                        throttle::record_failure(
                            conn,
                            &attempt_keys,
                            &throttle,
                            Utc::now().naive_utc(),
                        )
                    })
                    .await?;
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    /// Exchanges a refresh token for a new pair (DESIGN §3).
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
                    let now = Utc::now().naive_utc();
                    let (session, user) = sessions::find_with_user(conn, &claims.sid)?
                        .filter(|(session, user)| {
                            session.user_id == claims.sub && session.is_live(now) && user.is_active
                        })
                        .ok_or(AuthError::InvalidRefreshToken)?;
                    let used = LastUse {
                        at: now,
                        user_agent: &client.user_agent,
                        ip: &client.ip,
                    };
                    let access_jti = new_token_id();
                    if claims.jti == session.refresh_jti
                        && sessions::rotate(
                            conn,
                            &session.id,
                            &claims.jti,
                            &new_token_id(),
                            &access_jti,
                            &used,
                        )?
                    {
                        return Ok(Refreshed::Rotated(reload(conn, &session.id)?, user));
                    }
                    // Lost a race, or an older token: re-read what the winner wrote.
                    let session = reload(conn, &session.id)?;
                    let within_grace = session.previous_refresh_jti.as_deref() == Some(&claims.jti)
                        && now - session.refreshed_at <= grace;
                    if within_grace {
                        sessions::reissue_access(conn, &session.id, &access_jti, &used)?;
                        return Ok(Refreshed::Reissued(reload(conn, &session.id)?, user));
                    }
                    let (_, pending) = revocation::revoke_sessions(
                        conn,
                        &[session],
                        RevokeReason::RefreshTokenReused,
                        now,
                        ttl,
                    )?;
                    Ok(Refreshed::Theft(pending))
                })
            })
            .await?;
        match outcome {
            Refreshed::Rotated(session, user) | Refreshed::Reissued(session, user) => self
                .tokens
                .pair(&session, &Roles::from_stored(&user.roles), Utc::now()),
            Refreshed::Theft(pending) => {
                tracing::warn!(%session_id, "refresh token reused: session revoked");
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
        self.revoke(move |conn, now, ttl| {
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
        let user_id = caller.user_id.clone();
        self.revoke(move |conn, now, ttl| {
            Ok(revocation::revoke_user(
                conn,
                &user_id,
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
        let user_id = caller.user_id.clone();
        self.revoke(move |conn, now, ttl| {
            let mut targets = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some(session) = sessions::find(conn, id)?
                    && session.user_id == user_id
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

    /// Runs a revoking change in a write transaction, then publishes its revocations.
    pub(crate) async fn revoke<F>(&self, change: F) -> Result<usize, AuthError>
    where
        F: FnOnce(
                &mut AnyConnection,
                NaiveDateTime,
                std::time::Duration,
            ) -> Result<(usize, Pending), AuthError>
            + Send
            + 'static,
    {
        let ttl = self.tokens.settings().revocation_ttl();
        let (count, pending) = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| change(conn, Utc::now().naive_utc(), ttl))
            })
            .await?;
        self.publisher.publish(pending).await;
        Ok(count)
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

fn reload(conn: &mut AnyConnection, id: &str) -> Result<Session, AuthError> {
    sessions::find(conn, id)?.ok_or(AuthError::InvalidRefreshToken)
}

fn new_token_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Durations from settings, which `Settings::validate` bounds to a few years.
fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
