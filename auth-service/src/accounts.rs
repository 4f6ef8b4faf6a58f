//! Accounts: registration, password changes, and the admin's view of users.

use chrono::{SubsecRound, Utc};
use database::{unique_violation, write_transaction};
use secrecy::SecretString;

use crate::caller::Caller;
use crate::db::sessions;
use crate::db::users::{self, NewUser, User};
use crate::domain::{ClientInfo, Email, Roles, Username};
use crate::error::{AuthError, FieldErrors};
use crate::metrics::Operation;
use crate::revocation::{self, RevokeReason};
use crate::sessions::start_session;
use crate::state::AppState;
use crate::throttle::{self, AttemptKeys};
use crate::tokens::TokenPair;
use grpc_conventions::{PageToken, page_limit};
use token_verifier::Rejection;

/// What a registration asks for, as received.
pub struct Registration {
    pub username: String,
    pub email: String,
    pub password: String,
}

impl Registration {
    /// A registration whose password is the first line of `input` (standard input, for
    /// `create-admin`: a password never belongs in the process list or the shell history).
    ///
    /// # Errors
    /// `input` cannot be read.
    pub fn with_password_from(
        username: String,
        email: String,
        mut input: impl std::io::BufRead,
    ) -> std::io::Result<Self> {
        let mut password = String::new();
        input.read_line(&mut password)?;
        Ok(Self {
            username,
            email,
            password: password.trim_end_matches(['\r', '\n']).to_owned(),
        })
    }
}

/// An admin's change to an account; `None` leaves a field as it is.
pub struct AccountUpdate {
    pub is_active: Option<bool>,
    pub roles: Option<Vec<String>>,
}

impl AppState {
    /// Creates an account with `roles` and, when `client` is given, its first session.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] naming each invalid field, [`AuthError::UsernameTaken`],
    /// [`AuthError::EmailTaken`].
    pub async fn register(
        &self,
        registration: Registration,
        roles: Roles,
        client: Option<ClientInfo>,
    ) -> Result<(User, Option<TokenPair>), AuthError> {
        let mut errors = FieldErrors::default();
        let username = errors.check("username", Username::parse(&registration.username));
        let email = errors.check("email", Email::parse(&registration.email));
        let password = errors.check(
            "password",
            self.policy.check(
                &registration.password,
                username
                    .as_ref()
                    .map_or(registration.username.trim(), Username::as_str),
                registration.email.trim(),
            ),
        );
        // Each `None` recorded its message in `errors`.
        let (Some(username), Some(email), Some(password)) = (username, email, password) else {
            return Err(errors.into());
        };

        let hash = self.passwords.hash(password.into_secret()).await?;
        let max_ttl = self.tokens.settings().session_max_ttl_secs;
        let (user, session) = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| -> Result<_, AuthError> {
                    let now = Utc::now().trunc_subsecs(3);
                    let id = uuid::Uuid::now_v7().to_string();
                    let stored_roles = roles.to_string();
                    let new_user = NewUser {
                        id: &id,
                        username: username.as_str(),
                        username_key: username.key(),
                        email: email.as_str(),
                        email_key: email.key(),
                        password_hash: &hash,
                        roles: &stored_roles,
                        is_active: true,
                        created_at: now.naive_utc(),
                        updated_at: now.naive_utc(),
                    };
                    users::insert(conn, &new_user).map_err(|error| {
                        match unique_violation(&error) {
                            Some(target) if target.contains("username_key") => {
                                AuthError::UsernameTaken
                            }
                            Some(target) if target.contains("email_key") => AuthError::EmailTaken,
                            _ => AuthError::from(error),
                        }
                    })?;
                    let user = users::find(conn, &id)?.ok_or(AuthError::UserNotFound)?;
                    let session = match &client {
                        Some(client) => Some(start_session(conn, &user, client, now, max_ttl)?),
                        None => None,
                    };
                    Ok((user, session.map(|session| (session, now))))
                })
            })
            .await?;
        let pair = match session {
            Some((session, issued_at)) => Some(self.tokens.pair(
                &session,
                &Roles::from_stored(&user.roles),
                issued_at,
            )?),
            None => None,
        };
        Ok((user, pair))
    }

    /// Changes the caller's password after checking the current one, and ends every other
    /// session of the caller. Returns how many were ended.
    ///
    /// The check is charged to the throttle before the hash runs. The change is written only if
    /// the account still holds the hash that was checked and the caller's session is still
    /// live, read in the transaction that writes it.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for a wrong current password or a new one the policy
    /// refuses; [`AuthError::Throttled`] after too many wrong current passwords;
    /// [`AuthError::InvalidToken`] when the caller's session ended meanwhile.
    pub async fn change_password(
        &self,
        caller: &Caller,
        current: String,
        new: String,
    ) -> Result<usize, AuthError> {
        let user = self.user(&caller.user_id).await?;
        let new = self
            .policy
            .check(&new, &user.username, &user.email)
            .map_err(|message| AuthError::from(FieldErrors::single("new_password", message)))?;
        let keys = AttemptKeys::for_session(&user.id, &caller.session_id);
        let throttle = self.throttle.clone();
        let reservation = self
            .db
            .run(move |conn| throttle::reserve(conn, keys, &throttle, Utc::now().naive_utc()))
            .await
            .inspect_err(|error| {
                if matches!(error, AuthError::Throttled { .. }) {
                    self.metrics.throttled(Operation::ChangePassword);
                }
            })?;
        let checked_hash = user.password_hash;
        let Some(reservation) = self
            .judge(
                SecretString::from(current),
                Some(checked_hash.clone()),
                reservation,
            )
            .await?
        else {
            return Err(not_the_current_password());
        };
        let hash = self.passwords.hash(new.into_secret()).await?;

        let session_id = caller.session_id.clone();
        self.revoke(&caller.user_id, move |conn, user, now, ttl| {
            // Another change won the race: what was checked is no longer the password.
            if user.password_hash != checked_hash {
                return Err(not_the_current_password());
            }
            if !sessions::find(conn, &session_id)?.is_some_and(|session| session.is_live(now)) {
                return Err(AuthError::InvalidToken(Rejection::Revoked));
            }
            reservation.succeeded(conn)?;
            users::set_password_hash(conn, &user.id, &hash, now)?;
            let others: Vec<_> = sessions::live_for_user(conn, &user.id, now)?
                .into_iter()
                .filter(|session| session.id != session_id)
                .collect();
            Ok(revocation::revoke_sessions(
                conn,
                &others,
                RevokeReason::PasswordChanged,
                now,
                ttl,
            )?)
        })
        .await
    }

    /// A user the caller may see: itself, or anyone for an admin. An empty id means the caller.
    ///
    /// # Errors
    /// [`AuthError::PermissionDenied`], [`AuthError::UserNotFound`], a malformed id.
    pub async fn get_user(&self, caller: &Caller, id: &str) -> Result<User, AuthError> {
        if id.is_empty() || id == caller.user_id {
            return Ok(caller.user.clone());
        }
        parse_user_id(id)?;
        caller.require_admin()?;
        self.user(id).await
    }

    /// One page of users in creation order, and the token of the next page.
    ///
    /// # Errors
    /// [`AuthError::PermissionDenied`] for a non-admin; invalid page size or token.
    pub async fn list_users(
        &self,
        caller: &Caller,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<User>, Option<String>), AuthError> {
        caller.require_admin()?;
        let limit = page_limit(page_size)?;
        let after = PageToken::decode(page_token)?;
        let mut page = self
            .db
            .run(move |conn| -> Result<_, AuthError> {
                let after = after.as_ref().map(PageToken::last_id);
                Ok(users::list_after(conn, after, limit + 1)?)
            })
            .await?;
        let next = if page.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
            page.pop();
            page.last().map(|user| PageToken::after(&user.id).encode())
        } else {
            None
        };
        Ok((page, next))
    }

    /// Applies an admin's change. Deactivation and role changes end every session of the
    /// user and cut off its tokens at once.
    ///
    /// # Errors
    /// [`AuthError::PermissionDenied`], [`AuthError::UserNotFound`],
    /// [`AuthError::SelfModification`], unknown roles.
    pub async fn update_user(
        &self,
        caller: &Caller,
        id: &str,
        update: AccountUpdate,
    ) -> Result<User, AuthError> {
        caller.require_admin()?;
        parse_user_id(id)?;
        let roles = update
            .roles
            .as_deref()
            .map(Roles::parse_names)
            .transpose()
            .map_err(|message| AuthError::from(FieldErrors::single("roles", message)))?;
        let caller_id = caller.user_id.clone();
        self.revoke(id, move |conn, user, now, ttl| {
            // Decided on the row as it is now, held until the change commits.
            let current_roles = Roles::from_stored(&user.roles);
            let deactivating = user.is_active && update.is_active == Some(false);
            let roles_change = roles.filter(|roles| *roles != current_roles);
            if user.id == caller_id
                && (deactivating
                    || roles_change
                        .as_ref()
                        .is_some_and(|r| !r.contains(crate::domain::Role::Admin)))
            {
                return Err(AuthError::SelfModification);
            }
            let is_active = update.is_active.unwrap_or(user.is_active);
            let reason = if deactivating {
                Some(RevokeReason::UserDeactivated)
            } else if roles_change.is_some() {
                Some(RevokeReason::RolesChanged)
            } else {
                None
            };
            let stored_roles = roles_change.unwrap_or(current_roles).to_string();
            users::update_account(conn, &user.id, is_active, &stored_roles, now)?;
            let pending = match reason {
                Some(reason) => revocation::revoke_user(conn, &user.id, reason, now, ttl)?.1,
                None => revocation::Pending::default(),
            };
            let updated = User {
                is_active,
                roles: stored_roles,
                updated_at: now,
                tokens_valid_after: match reason {
                    Some(_) => Some(revocation::cut_off(now)),
                    None => user.tokens_valid_after,
                },
                ..user.clone()
            };
            Ok((updated, pending))
        })
        .await
    }

    async fn user(&self, id: &str) -> Result<User, AuthError> {
        let id = id.to_owned();
        self.db
            .run(move |conn| -> Result<_, AuthError> { Ok(users::find(conn, &id)?) })
            .await?
            .ok_or(AuthError::UserNotFound)
    }
}

fn parse_user_id(id: &str) -> Result<(), AuthError> {
    uuid::Uuid::parse_str(id)
        .map(drop)
        .map_err(|_| AuthError::from(FieldErrors::single("user_id", "must be a UUID")))
}

fn not_the_current_password() -> AuthError {
    AuthError::from(FieldErrors::single(
        "current_password",
        "is not the current password",
    ))
}
