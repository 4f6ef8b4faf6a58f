use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::Error;

use super::schema::users;
use database::AnyConnection;

/// A stored account.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub username: String,
    pub username_key: String,
    pub email: String,
    pub email_key: String,
    pub password_hash: String,
    pub roles: String,
    pub is_active: bool,
    pub tokens_valid_after: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub username_key: &'a str,
    pub email: &'a str,
    pub email_key: &'a str,
    pub password_hash: &'a str,
    pub roles: &'a str,
    pub is_active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// # Errors
/// A unique violation on `users_username_key_idx` or `users_email_key_idx`.
pub fn insert(conn: &mut AnyConnection, user: &NewUser<'_>) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// [`find`], holding the row until the transaction ends so that no other transaction changes
/// it meanwhile: what a revoking change decides on. SQLite's write transactions
/// (`BEGIN IMMEDIATE`) are serialised already; PostgreSQL locks the row (`FOR UPDATE`).
pub fn find_for_update(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<User>> {
    match conn {
        AnyConnection::Postgresql(pg) => users::table
            .find(id)
            .select(User::as_select())
            .for_update()
            .first(pg)
            .optional(),
        AnyConnection::Sqlite(_) => find(conn, id),
    }
}

/// [`find`], keeping the row from changing until the transaction ends while other readers may
/// hold it too: what a login or a refresh decides on (`FOR SHARE` on PostgreSQL; SQLite's
/// write transactions are serialised already).
pub fn find_for_share(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<User>> {
    match conn {
        AnyConnection::Postgresql(pg) => users::table
            .find(id)
            .select(User::as_select())
            .for_share()
            .first(pg)
            .optional(),
        AnyConnection::Sqlite(_) => find(conn, id),
    }
}

/// The user whose username key or email key (when `by_email`) is `key`.
pub fn find_by_login(
    conn: &mut AnyConnection,
    key: &str,
    by_email: bool,
) -> QueryResult<Option<User>> {
    let query = users::table.select(User::as_select()).into_boxed();
    let query = if by_email {
        query.filter(users::email_key.eq(key))
    } else {
        query.filter(users::username_key.eq(key))
    };
    query.first(conn).optional()
}

/// Up to `limit` users with ids after `after`, in id (creation) order.
pub fn list_after(
    conn: &mut AnyConnection,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<User>> {
    let mut query = users::table
        .select(User::as_select())
        .order(users::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(users::id.gt(after.to_owned()));
    }
    query.load(conn)
}

pub fn set_password_hash(
    conn: &mut AnyConnection,
    id: &str,
    hash: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    expect_one(
        diesel::update(users::table.find(id))
            .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
            .execute(conn),
    )
}

pub fn update_account(
    conn: &mut AnyConnection,
    id: &str,
    is_active: bool,
    roles: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    expect_one(
        diesel::update(users::table.find(id))
            .set((
                users::is_active.eq(is_active),
                users::roles.eq(roles),
                users::updated_at.eq(now),
            ))
            .execute(conn),
    )
}

pub fn set_cut_off(conn: &mut AnyConnection, id: &str, at: NaiveDateTime) -> QueryResult<()> {
    expect_one(
        diesel::update(users::table.find(id))
            .set(users::tokens_valid_after.eq(at))
            .execute(conn),
    )
}

fn expect_one(updated: QueryResult<usize>) -> QueryResult<()> {
    match updated? {
        0 => Err(Error::NotFound),
        _ => Ok(()),
    }
}
