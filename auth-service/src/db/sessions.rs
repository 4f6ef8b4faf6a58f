use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{sessions, users};
use super::users::User;
use database::AnyConnection;

/// A stored session: one login and the refresh tokens rotated from it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub refresh_jti: String,
    pub previous_refresh_jti: Option<String>,
    pub generation: i64,
    pub refreshed_at: NaiveDateTime,
    pub access_jti: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_reason: Option<String>,
    pub user_agent: String,
    pub ip: String,
}

impl Session {
    pub fn is_live(&self, now: NaiveDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

#[derive(Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub refresh_jti: &'a str,
    pub generation: i64,
    pub refreshed_at: NaiveDateTime,
    pub access_jti: &'a str,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub user_agent: &'a str,
    pub ip: &'a str,
}

pub fn insert(conn: &mut AnyConnection, session: &NewSession<'_>) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(session)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<Session>> {
    sessions::table
        .find(id)
        .select(Session::as_select())
        .first(conn)
        .optional()
}

/// The session and its user, in one query: what every authenticated call decides on (on the
/// backend's own connection, which finds the statement prepared without rendering it).
pub fn find_with_user(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<(Session, User)>> {
    database::with_backend!(conn, |c| sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(id))
        .select((Session::as_select(), User::as_select()))
        .first(c)
        .optional())
}

/// [`find`], holding the row until the transaction ends (`FOR UPDATE` on PostgreSQL; SQLite's
/// write transactions are serialised already): of two concurrent refreshes with the same
/// token, the second sees what the first wrote.
pub fn find_for_update(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<Session>> {
    match conn {
        AnyConnection::Postgresql(pg) => sessions::table
            .find(id)
            .select(Session::as_select())
            .for_update()
            .first(pg)
            .optional(),
        AnyConnection::Sqlite(_) => find(conn, id),
    }
}

/// Writes a refreshed session's tokens and last use: after a rotation, or after a reissue of
/// the access token alone within the grace window. The caller holds the row
/// ([`find_for_update`]).
pub fn record_refresh(conn: &mut AnyConnection, session: &Session) -> QueryResult<()> {
    diesel::update(sessions::table.find(&session.id))
        .set((
            sessions::previous_refresh_jti.eq(&session.previous_refresh_jti),
            sessions::refresh_jti.eq(&session.refresh_jti),
            sessions::generation.eq(session.generation),
            sessions::refreshed_at.eq(session.refreshed_at),
            sessions::access_jti.eq(&session.access_jti),
            sessions::last_used_at.eq(session.last_used_at),
            sessions::user_agent.eq(&session.user_agent),
            sessions::ip.eq(&session.ip),
        ))
        .execute(conn)
        .map(drop)
}

/// The user's sessions that are neither revoked nor expired.
pub fn live_for_user(
    conn: &mut AnyConnection,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<Session>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .select(Session::as_select())
        .load(conn)
}

/// The user's sessions for display, newest first: live ones, plus those revoked or expired
/// since `ended_since` when `include_ended`.
pub fn list_for_user(
    conn: &mut AnyConnection,
    user_id: &str,
    include_ended: bool,
    now: NaiveDateTime,
    ended_since: NaiveDateTime,
) -> QueryResult<Vec<Session>> {
    let query = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .select(Session::as_select())
        .order(sessions::created_at.desc())
        .into_boxed();
    let query = if include_ended {
        query.filter(
            sessions::revoked_at.ge(ended_since).or(sessions::revoked_at
                .is_null()
                .and(sessions::expires_at.ge(ended_since))),
        )
    } else {
        query
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now))
    };
    query.load(conn)
}

/// Marks the listed sessions revoked for `reason`, unless already revoked. Returns the count.
pub fn mark_revoked(
    conn: &mut AnyConnection,
    ids: &[&str],
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::id.eq_any(ids))
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(now),
        sessions::revoked_reason.eq(reason),
    ))
    .execute(conn)
}
