use chrono::{DateTime, NaiveDateTime};
use diesel::prelude::*;
use revocation::{Entry, Revocation};

use super::schema::revocations;
use database::AnyConnection;

/// A revocation as kept in the outbox.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = revocations)]
pub struct StoredRevocation {
    pub id: String,
    pub kind: String,
    pub subject: String,
    /// The cut-off of a `user` revocation, in milliseconds since the epoch; 0 otherwise.
    pub not_before: i64,
    pub expires_at: NaiveDateTime,
    pub published_at: Option<NaiveDateTime>,
}

impl StoredRevocation {
    /// The store entry; `None` for a kind this version does not know.
    pub fn entry(&self) -> Option<Entry> {
        let revocation = match self.kind.as_str() {
            "token" => Revocation::Token {
                token_id: self.subject.clone(),
            },
            "session" => Revocation::Session {
                session_id: self.subject.clone(),
            },
            "user" => Revocation::UserCutoff {
                user_id: self.subject.clone(),
                not_before_ms: self.not_before,
            },
            _ => return None,
        };
        Some(Entry {
            revocation,
            expires_at: self.expires_at.and_utc().timestamp(),
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = revocations)]
struct NewRevocation<'a> {
    id: String,
    kind: &'static str,
    subject: &'a str,
    not_before: i64,
    expires_at: NaiveDateTime,
}

/// Adds `entries` to the outbox, unpublished. Returns their ids.
pub fn insert(conn: &mut AnyConnection, entries: &[Entry]) -> QueryResult<Vec<String>> {
    let rows: Vec<NewRevocation<'_>> = entries
        .iter()
        .map(|entry| {
            let (kind, subject, not_before) = match &entry.revocation {
                Revocation::Token { token_id } => ("token", token_id.as_str(), 0),
                Revocation::Session { session_id } => ("session", session_id.as_str(), 0),
                Revocation::UserCutoff {
                    user_id,
                    not_before_ms,
                } => ("user", user_id.as_str(), *not_before_ms),
            };
            NewRevocation {
                id: uuid::Uuid::now_v7().to_string(),
                kind,
                subject,
                not_before,
                expires_at: DateTime::from_timestamp(entry.expires_at, 0)
                    .unwrap_or_default()
                    .naive_utc(),
            }
        })
        .collect();
    if !rows.is_empty() {
        // One statement for all rows, on the backend's own connection: the multi-backend one
        // cannot batch inserts for SQLite.
        database::with_backend!(conn, |c| diesel::insert_into(revocations::table)
            .values(&rows)
            .execute(c))?;
    }
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// Unpublished entries that still matter, oldest first.
pub fn pending(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<StoredRevocation>> {
    revocations::table
        .filter(revocations::published_at.is_null())
        .filter(revocations::expires_at.gt(now))
        .order(revocations::id.asc())
        .limit(limit)
        .select(StoredRevocation::as_select())
        .load(conn)
}

/// How many live entries are waiting to be published.
pub fn count_pending(conn: &mut AnyConnection, now: NaiveDateTime) -> QueryResult<i64> {
    revocations::table
        .filter(revocations::published_at.is_null())
        .filter(revocations::expires_at.gt(now))
        .count()
        .get_result(conn)
}

/// Every entry that still matters, published or not.
pub fn live(conn: &mut AnyConnection, now: NaiveDateTime) -> QueryResult<Vec<StoredRevocation>> {
    revocations::table
        .filter(revocations::expires_at.gt(now))
        .order(revocations::id.asc())
        .select(StoredRevocation::as_select())
        .load(conn)
}

pub fn mark_published(
    conn: &mut AnyConnection,
    ids: &[String],
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(revocations::table.filter(revocations::id.eq_any(ids)))
        .set(revocations::published_at.eq(now))
        .execute(conn)
        .map(drop)
}

pub fn delete_expired(conn: &mut AnyConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(revocations::table.filter(revocations::expires_at.le(now))).execute(conn)
}
