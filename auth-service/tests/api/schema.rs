use secrecy::ExposeSecret;
use test_support::{Backend, SchemaShape};

use crate::helpers::spawn_app;

#[tokio::test]
async fn both_migration_trees_build_the_same_tables_columns_and_indexes() {
    let postgres = spawn_app(Backend::Postgres).await;
    let sqlite = spawn_app(Backend::Sqlite).await;
    let url = |app: &crate::helpers::TestApp| {
        app.settings
            .database
            .url
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned()
    };

    let on_postgres = SchemaShape::of(&url(&postgres));
    let on_sqlite = SchemaShape::of(&url(&sqlite));

    assert!(
        on_postgres
            .columns
            .contains(&("sessions".to_owned(), "refresh_jti".to_owned()))
    );
    assert!(on_postgres.indexes.contains("users_username_key_idx"));
    assert_eq!(on_postgres, on_sqlite);
}
