use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::login_attempts;
use database::AnyConnection;

/// Failed logins counted for one key since the start of its window.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = login_attempts)]
pub struct Attempts {
    pub key: String,
    pub failures: i32,
    pub window_started_at: NaiveDateTime,
}

pub fn find_many(conn: &mut AnyConnection, keys: &[&str]) -> QueryResult<Vec<Attempts>> {
    login_attempts::table
        .filter(login_attempts::key.eq_any(keys))
        .select(Attempts::as_select())
        .load(conn)
}

/// Counts one failure for `key`: in its current window if that started after `window_floor`,
/// else in a new window starting `now`. Each step is one atomic statement, so concurrent
/// failures are not lost (except two that both open a new window, which count as one).
pub fn record_failure(
    conn: &mut AnyConnection,
    key: &str,
    window_floor: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<()> {
    for _ in 0..2 {
        let in_window = diesel::update(
            login_attempts::table
                .find(key)
                .filter(login_attempts::window_started_at.gt(window_floor)),
        )
        .set(login_attempts::failures.eq(login_attempts::failures + 1))
        .execute(conn)?;
        if in_window > 0 {
            return Ok(());
        }
        let restarted = diesel::update(login_attempts::table.find(key))
            .set((
                login_attempts::failures.eq(1),
                login_attempts::window_started_at.eq(now),
            ))
            .execute(conn)?;
        if restarted > 0 {
            return Ok(());
        }
        let inserted = diesel::insert_into(login_attempts::table)
            .values((
                login_attempts::key.eq(key),
                login_attempts::failures.eq(1),
                login_attempts::window_started_at.eq(now),
            ))
            .execute(conn);
        match inserted {
            // Another request inserted the row first: count in it on the next pass.
            Err(error) if database::unique_violation(&error).is_some() => continue,
            other => return other.map(drop),
        }
    }
    Ok(())
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
