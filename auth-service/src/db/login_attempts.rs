use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::login_attempts;
use database::AnyConnection;

/// What [`charge`] did with one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Counted, within the limit.
    Counted,
    /// Refused: the counter is at its limit in the window that started then.
    AtLimit { window_started_at: NaiveDateTime },
}

/// Counts one attempt for `key` unless its window, which started after `window_floor`, already
/// holds `limit`; a window that started at or before the floor is over, and the attempt opens a
/// new one at `now`. Each step is one conditional statement, which PostgreSQL re-checks on the
/// row it locks: of N concurrent charges of a counter at `limit - k`, exactly `k` count.
///
/// # Errors
/// Database errors; a unique violation when a concurrent first charge inserted the row first
/// (the charge counts nothing then: run it again in a new transaction).
pub fn charge(
    conn: &mut AnyConnection,
    key: &str,
    limit: u32,
    window_floor: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<Charge> {
    let limit = i32::try_from(limit).unwrap_or(i32::MAX);
    let counted = diesel::update(
        login_attempts::table
            .find(key)
            .filter(login_attempts::window_started_at.gt(window_floor))
            .filter(login_attempts::failures.lt(limit)),
    )
    .set(login_attempts::failures.eq(login_attempts::failures + 1))
    .execute(conn)?;
    if counted > 0 {
        return Ok(Charge::Counted);
    }
    let restarted = diesel::update(
        login_attempts::table
            .find(key)
            .filter(login_attempts::window_started_at.le(window_floor)),
    )
    .set((
        login_attempts::failures.eq(1),
        login_attempts::window_started_at.eq(now),
    ))
    .execute(conn)?;
    if restarted > 0 {
        return Ok(Charge::Counted);
    }
    let window = login_attempts::table
        .find(key)
        .select(login_attempts::window_started_at)
        .first(conn)
        .optional()?;
    match window {
        Some(window_started_at) => Ok(Charge::AtLimit { window_started_at }),
        None => diesel::insert_into(login_attempts::table)
            .values((
                login_attempts::key.eq(key),
                login_attempts::failures.eq(1),
                login_attempts::window_started_at.eq(now),
            ))
            .execute(conn)
            .map(|_| Charge::Counted),
    }
}

/// Takes back one counted attempt of `key`.
pub fn uncharge(conn: &mut AnyConnection, key: &str) -> QueryResult<()> {
    diesel::update(
        login_attempts::table
            .find(key)
            .filter(login_attempts::failures.gt(0)),
    )
    .set(login_attempts::failures.eq(login_attempts::failures - 1))
    .execute(conn)
    .map(drop)
}

pub fn clear(conn: &mut AnyConnection, key: &str) -> QueryResult<()> {
    diesel::delete(login_attempts::table.find(key))
        .execute(conn)
        .map(drop)
}

pub fn delete_started_before(conn: &mut AnyConnection, floor: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(login_attempts::table.filter(login_attempts::window_started_at.lt(floor)))
        .execute(conn)
}
