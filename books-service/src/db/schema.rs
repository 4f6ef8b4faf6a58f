// Written by hand to match both migration trees; only types the two backends share.

diesel::table! {
    books (id) {
        id -> Text,
        owner_id -> Text,
        title -> Text,
        author -> Text,
        publisher -> Nullable<Text>,
        isbn -> Nullable<Text>,
        price_cents -> BigInt,
        published_year -> Nullable<Integer>,
        search_text -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}
