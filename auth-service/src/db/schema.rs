// Written by hand to match both migration trees; only types the two backends share.

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        username_key -> Text,
        email -> Text,
        email_key -> Text,
        password_hash -> Text,
        roles -> Text,
        is_active -> Bool,
        tokens_valid_after -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        refresh_jti -> Text,
        previous_refresh_jti -> Nullable<Text>,
        generation -> BigInt,
        refreshed_at -> Timestamp,
        access_jti -> Text,
        created_at -> Timestamp,
        last_used_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        revoked_reason -> Nullable<Text>,
        user_agent -> Text,
        ip -> Text,
    }
}

diesel::table! {
    revocations (id) {
        id -> Text,
        kind -> Text,
        subject -> Text,
        not_before -> BigInt,
        expires_at -> Timestamp,
        published_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_attempts (key) {
        key -> Text,
        failures -> Integer,
        window_started_at -> Timestamp,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, sessions);
