//! Revocations: recorded durably in the auth database (the outbox) in the same transaction as
//! the change that caused them, then published to the revocation store. A publication that
//! fails is retried by [`Publisher::run`] until it succeeds, and a store that lost its data
//! (Redis restarted) is re-seeded with every live revocation: nothing is lost.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, SubsecRound, TimeDelta, Utc};
use database::{AnyConnection, Database};
use diesel::QueryResult;
use revocation::{Entry, Revocation, RevocationStore, Revocations};
use tokio_util::sync::CancellationToken;

use crate::db::{revocations, sessions, sessions::Session, users, users::User};
use crate::error::AuthError;
use crate::metrics::AuthMetrics;

/// Why a session ended, as shown in the session list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    Logout,
    LogoutAll,
    RevokedByUser,
    PasswordChanged,
    UserDeactivated,
    RolesChanged,
    RefreshTokenReused,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::RevokedByUser => "revoked_by_user",
            Self::PasswordChanged => "password_changed",
            Self::UserDeactivated => "user_deactivated",
            Self::RolesChanged => "roles_changed",
            Self::RefreshTokenReused => "refresh_token_reused",
        }
    }
}

/// Revocations written to the outbox by a transaction, to publish once it has committed.
#[derive(Debug, Default)]
#[must_use = "publish the revocations after the transaction commits"]
pub struct Pending {
    ids: Vec<String>,
    entries: Vec<Entry>,
}

impl Pending {
    fn add(&mut self, other: Self) {
        self.ids.extend(other.ids);
        self.entries.extend(other.entries);
    }
}

/// Revokes `targets` (skipping those already revoked) and queues their session and newest
/// access token for the store. Returns how many were revoked now.
///
/// # Errors
/// Database errors.
pub fn revoke_sessions(
    conn: &mut AnyConnection,
    targets: &[Session],
    reason: RevokeReason,
    now: NaiveDateTime,
    ttl: Duration,
) -> QueryResult<(usize, Pending)> {
    let live: Vec<&Session> = targets.iter().filter(|s| s.revoked_at.is_none()).collect();
    if live.is_empty() {
        return Ok((0, Pending::default()));
    }
    let ids: Vec<&str> = live.iter().map(|s| s.id.as_str()).collect();
    let revoked = sessions::mark_revoked(conn, &ids, reason.as_str(), now)?;
    let expires_at = expiry(now, ttl);
    let entries: Vec<Entry> = live
        .iter()
        .flat_map(|session| {
            [
                Revocation::Session {
                    session_id: session.id.clone(),
                },
                Revocation::Token {
                    token_id: session.access_jti.clone(),
                },
            ]
        })
        .map(|revocation| Entry {
            revocation,
            expires_at,
        })
        .collect();
    let ids = revocations::insert(conn, &entries)?;
    Ok((revoked, Pending { ids, entries }))
}

/// The cut-off that a revocation made at `now` sets: the next millisecond, so that every token
/// issued up to `now`, within the same millisecond included, falls before it.
pub fn cut_off(now: NaiveDateTime) -> NaiveDateTime {
    now.trunc_subsecs(3) + TimeDelta::milliseconds(1)
}

/// When a token issued at `now` for `user` counts as issued (its `iat`): `now` to the
/// millisecond, but never before the user's cut-off. A token decided after a cut-off, with the
/// user's row held, is then never taken for one issued before it, even within the cut-off's
/// millisecond or on a host whose clock is behind the one that set it.
pub fn issue_time(now: DateTime<Utc>, user: &User) -> DateTime<Utc> {
    let now = now.trunc_subsecs(3);
    user.tokens_valid_after
        .map(|cut_off| cut_off.and_utc())
        .filter(|cut_off| *cut_off > now)
        .unwrap_or(now)
}

/// Revokes every access token of `user_id` issued up to `now` (with a [`cut_off`]), and every
/// live session of the user with `reason`. Returns the sessions revoked. The caller holds the
/// user's row, taken before `now` was read.
///
/// # Errors
/// Database errors.
pub fn revoke_user(
    conn: &mut AnyConnection,
    user_id: &str,
    reason: RevokeReason,
    now: NaiveDateTime,
    ttl: Duration,
) -> QueryResult<(usize, Pending)> {
    let not_before = cut_off(now);
    users::set_cut_off(conn, user_id, not_before)?;
    let live = sessions::live_for_user(conn, user_id, now)?;
    let (revoked, mut pending) = revoke_sessions(conn, &live, reason, now, ttl)?;
    let cut_off = vec![Entry {
        revocation: Revocation::UserCutoff {
            user_id: user_id.to_owned(),
            not_before_ms: not_before.and_utc().timestamp_millis(),
        },
        expires_at: expiry(now, ttl),
    }];
    let ids = revocations::insert(conn, &cut_off)?;
    pending.add(Pending {
        ids,
        entries: cut_off,
    });
    Ok((revoked, pending))
}

fn expiry(now: NaiveDateTime, ttl: Duration) -> i64 {
    now.and_utc()
        .timestamp()
        .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
}

/// Moves revocations from the outbox to the store.
pub struct Publisher {
    db: Database,
    store: Revocations,
    retry_interval: Duration,
    // How long a re-seed vouches for the store; a re-seed also happens when this lapses.
    seed_ttl: Duration,
    metrics: Arc<AuthMetrics>,
}

impl Publisher {
    pub fn new(
        db: Database,
        store: Revocations,
        retry_interval: Duration,
        seed_ttl: Duration,
        metrics: Arc<AuthMetrics>,
    ) -> Self {
        Self {
            db,
            store,
            retry_interval,
            seed_ttl,
            metrics,
        }
    }

    pub fn store(&self) -> &Revocations {
        &self.store
    }

    /// Publishes what a committed transaction revoked. A failure is logged and left to
    /// [`run`](Self::run): the revocation is already durable, so the caller's request
    /// succeeds regardless.
    pub async fn publish(&self, pending: Pending) {
        if pending.entries.is_empty() {
            return;
        }
        match self.store.publish(&pending.entries).await {
            Ok(()) => {
                if let Err(error) = self.mark_published(pending.ids).await {
                    tracing::warn!(
                        ?error,
                        "revocation published but not marked; it will be re-sent"
                    );
                }
            }
            Err(error) => {
                tracing::warn!(%error, "revocation store unreachable; the revocation will be retried");
            }
        }
    }

    /// Retries unpublished revocations and re-seeds a store that lost its data, every
    /// `retry_interval`, until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut failing = false;
        loop {
            match self.sync().await {
                Ok(()) if failing => {
                    tracing::info!("revocation store reachable again; outbox published");
                    failing = false;
                }
                Ok(()) => {}
                Err(error) if !failing => {
                    tracing::warn!(?error, "cannot publish revocations; retrying");
                    failing = true;
                }
                Err(_) => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.retry_interval) => {}
            }
        }
    }

    /// One pass: re-seed if needed, else publish what is pending.
    ///
    /// # Errors
    /// The store or the database failed; nothing is marked published then.
    pub async fn sync(&self) -> Result<(), AuthError> {
        let now = Utc::now().naive_utc();
        // Also when the last seed has lapsed, so that whatever a store may have lost without
        // losing the mark (an eviction, a failover) is restored within `seed_ttl`.
        let reseed = match self.store.seeded_until().await.map_err(unavailable)? {
            Some(until) => until <= now.and_utc().timestamp(),
            None => true,
        };
        let (rows, backlog) = self
            .db
            .run(move |conn| -> Result<_, AuthError> {
                let backlog = revocations::count_pending(conn, now)?;
                let rows = if reseed {
                    revocations::live(conn, now)?
                } else {
                    revocations::pending(conn, now, 1_000)?
                };
                Ok((rows, backlog))
            })
            .await?;
        self.metrics.outbox_backlog.set(backlog);
        let entries: Vec<Entry> = rows.iter().filter_map(|row| row.entry()).collect();
        if reseed {
            let seeded_until = now
                .and_utc()
                .timestamp()
                .saturating_add(i64::try_from(self.seed_ttl.as_secs()).unwrap_or(i64::MAX));
            self.store
                .reseed(&entries, seeded_until)
                .await
                .map_err(unavailable)?;
            tracing::info!(entries = entries.len(), "revocation store seeded");
        } else if !entries.is_empty() {
            self.store.publish(&entries).await.map_err(unavailable)?;
        }
        let unpublished: Vec<String> = rows
            .into_iter()
            .filter(|row| row.published_at.is_none())
            .map(|row| row.id)
            .collect();
        self.mark_published(unpublished).await
    }

    async fn mark_published(&self, ids: Vec<String>) -> Result<(), AuthError> {
        if ids.is_empty() {
            return Ok(());
        }
        for id in &ids {
            if let Some(lag) = since_written(id) {
                self.metrics.publish_lag.observe(lag.as_secs_f64());
            }
        }
        let now = Utc::now().naive_utc();
        self.db
            .run(move |conn| -> Result<_, AuthError> {
                Ok(revocations::mark_published(conn, &ids, now)?)
            })
            .await
    }
}

/// How long ago the outbox row `id` was written: its id is a UUID v7, which carries the time.
fn since_written(id: &str) -> Option<Duration> {
    let (seconds, nanos) = uuid::Uuid::parse_str(id).ok()?.get_timestamp()?.to_unix();
    let written = std::time::UNIX_EPOCH + Duration::new(seconds, nanos);
    std::time::SystemTime::now().duration_since(written).ok()
}

fn unavailable(error: revocation::StoreError) -> AuthError {
    AuthError::Unavailable(error.into())
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveDateTime, Utc};

    use super::{cut_off, issue_time};
    use crate::db::users::User;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap_or_default()
            .to_utc()
    }

    fn user(cut_off: Option<NaiveDateTime>) -> User {
        User {
            id: "u1".into(),
            username: "u".into(),
            username_key: "u".into(),
            email: "u@example.org".into(),
            email_key: "u@example.org".into(),
            password_hash: String::new(),
            roles: "user".into(),
            is_active: true,
            tokens_valid_after: cut_off,
            created_at: NaiveDateTime::default(),
            updated_at: NaiveDateTime::default(),
        }
    }

    #[test]
    fn a_cut_off_falls_after_everything_issued_within_its_millisecond() {
        let revoked_at = at("2026-12-01T10:00:00.500700Z");
        let cut = cut_off(revoked_at.naive_utc());
        assert_eq!(cut.and_utc(), at("2026-12-01T10:00:00.501Z"));

        // Issued earlier in the same second, or in the same millisecond: before the cut-off.
        for earlier in ["2026-12-01T10:00:00.100Z", "2026-12-01T10:00:00.500999Z"] {
            let issued = issue_time(at(earlier), &user(None));
            assert!(issued.naive_utc() < cut, "{earlier}");
        }
    }

    #[test]
    fn a_token_issued_after_a_cut_off_is_never_dated_before_it() {
        let cut = at("2026-12-01T10:00:00.501Z").naive_utc();
        // Decided after the cut-off, but within its millisecond or on a clock that is behind.
        for now in ["2026-12-01T10:00:00.500800Z", "2026-12-01T09:59:59Z"] {
            assert_eq!(
                issue_time(at(now), &user(Some(cut))).naive_utc(),
                cut,
                "{now}"
            );
        }
        let later = at("2026-12-01T10:00:02.250Z");
        assert_eq!(issue_time(later, &user(Some(cut))), later);
    }
}
