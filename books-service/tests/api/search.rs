//! Free-text search served by the trigram indexes finds exactly what the plain definition does:
//! the books whose lower-cased title or author contains the lower-cased query, every character
//! literal, newest first, page after page, also while other clients write.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use proto::books::v1 as pb;
use secrecy::SecretString;
use test_support::{Backend, TestDatabase, both_backends};

use crate::helpers::{TestApp, book, spawn_app, spawn_app_on};

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The definition the indexes must not change.
fn matches(book: &pb::Book, query: &str) -> bool {
    format!("{}\n{}", book.title, book.author)
        .to_lowercase()
        .contains(&query.trim().to_lowercase())
}

/// The ids of `books` that match `query`, newest first.
fn expected(books: &[pb::Book], query: &str) -> Vec<String> {
    let mut ids: Vec<String> = books
        .iter()
        .filter(|book| matches(book, query))
        .map(|book| book.id.clone())
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids
}

fn ids(books: &[pb::Book]) -> Vec<String> {
    books.iter().map(|b| b.id.clone()).collect()
}

fn search(query: &str, page_size: i32) -> pb::ListBooksRequest {
    pb::ListBooksRequest {
        query: query.to_owned(),
        page_size,
        ..Default::default()
    }
}

/// Every book `token` can list, without a search.
async fn everything(app: &TestApp, token: &str, all: bool) -> Vec<pb::Book> {
    app.list_all(
        token,
        pb::ListBooksRequest {
            page_size: 100,
            all,
            ..Default::default()
        },
    )
    .await
}

/// Titles and authors that trip a naive index: wildcards and backslashes, FTS5 query syntax,
/// letters whose lower case differs by context or by length, other scripts, words too short
/// for trigrams.
const CORPUS: &[(&str, &str)] = &[
    ("The Left Hand of Darkness", "Ursula K. Le Guin"),
    ("A Wizard of Earthsea", "Ursula K. Le Guin"),
    ("Darkness at Noon", "Arthur Koestler"),
    ("100% Pure_Fiction", "Nobody"),
    ("C:\\Temp\\Files", "Back Slash"),
    ("Say \"AND\" or NEAR(x y)", "Quo*te ^Caret: -minus"),
    ("ΟΔΥΣΣΕΥΣ", "Ὅμηρος"),
    ("Straße der Ölsucher", "Jürgen ẞmith"),
    ("İstanbul Hatıraları", "Orhan Pamuk"),
    ("\u{212A}ELVIN scale", "Temperature"),
    ("日本語の本", "著者"),
    ("Émile", "Zola"),
    ("emile", "lower case"),
    ("ab", "cd"),
];

const QUERIES: &[&str] = &[
    "darkness",
    "DARKNESS",
    "  le guin ",
    "k. le",
    "of darkness",
    "left  hand",
    "ursula darkness",
    "dark noon",
    "%",
    "_",
    "\\",
    "0% p",
    "e_f",
    "c:\\temp",
    "\"and\"",
    "\"",
    "near(x",
    "quo*te",
    "^caret",
    ": -minus",
    "ΣΣΕΥΣ",
    "ευσ",
    "υς",
    "straße",
    "STRASSE",
    "ẞMITH",
    "İstanbul",
    "istanbul",
    "kelvin",
    "\u{212A}elvin",
    "日本語",
    "本",
    "ÉMILE",
    "emile",
    "mil",
    "ab",
    "b",
    "abc",
    "zzz",
    "ok",
];

both_backends! {
    async fn every_query_finds_what_a_plain_substring_match_finds(backend) {
        let app = spawn_app(backend).await;
        let reader = app.user("reader").await;
        let other = app.user("other").await;
        let admin = app.admin("admin").await;
        for (title, author) in CORPUS {
            app.create(&reader, book(title, author)).await.unwrap();
        }
        for (title, author) in &CORPUS[..4] {
            app.create(&other, book(&title.to_uppercase(), author)).await.unwrap();
        }
        let own = everything(&app, &reader, false).await;
        let all = everything(&app, &admin, true).await;
        assert_eq!(all.len(), CORPUS.len() + 4);

        for query in QUERIES {
            // Pages of two: every search crosses pages through its cursor.
            let found = app.list_all(&reader, search(query, 2)).await;
            assert_eq!(ids(&found), expected(&own, query), "{query:?}");
            let request = pb::ListBooksRequest { all: true, ..search(query, 3) };
            let everyones = app.list_all(&admin, request).await;
            assert_eq!(ids(&everyones), expected(&all, query), "{query:?}, all");
        }
        let by_author = pb::ListBooksRequest { author: "Ursula K. Le Guin".to_owned(), ..search("darkness", 1) };
        let found = app.list_all(&reader, by_author).await;
        assert_eq!(found.iter().map(|b| b.title.as_str()).collect::<Vec<_>>(), ["The Left Hand of Darkness"]);
    }

    async fn a_term_in_more_books_than_the_index_hands_over_still_finds_each_once(backend) {
        let app = spawn_app(backend).await;
        let user = app.user("hoarder").await;
        // More than SQLite takes from its index before reading in order instead.
        create_many(&app, &user, 1_100, |n| if n % 100 == 7 { format!("Rare tale {n}") } else { format!("Common tale {n}") }).await;
        let books = everything(&app, &user, false).await;

        for query in ["common", "tale", "rare", "rare tale 507", "e 1"] {
            let found = app.list_all(&user, search(query, 100)).await;
            assert_eq!(ids(&found), expected(&books, query), "{query:?}");
        }
    }

    async fn searches_follow_renames_and_deletions(backend) {
        let app = spawn_app(backend).await;
        let user = app.user("editor").await;
        let dune = app.create(&user, book("Dune", "Frank Herbert")).await.unwrap();
        let messiah = app.create(&user, book("Dune Messiah", "Frank Herbert")).await.unwrap();
        let found = |query: &'static str| {
            let app = &app;
            let user = &user;
            async move { ids(&app.list_all(user, search(query, 1)).await) }
        };
        assert_eq!(found("dune").await, [messiah.id.as_str(), dune.id.as_str()]);

        let renamed = pb::Book { title: "Children of Arrakis".to_owned(), ..messiah.clone() };
        app.update(&user, renamed, &["title"], 0).await.unwrap();
        assert_eq!(found("dune").await, [dune.id.as_str()]);
        assert_eq!(found("arrakis").await, [messiah.id.as_str()]);
        assert_eq!(found("herbert").await, [messiah.id.as_str(), dune.id.as_str()]);

        let new_author = pb::Book { author: "Brian Herbert".to_owned(), ..messiah.clone() };
        app.update(&user, new_author, &["author"], 0).await.unwrap();
        assert_eq!(found("frank").await, [dune.id.as_str()]);
        assert_eq!(found("brian").await, [messiah.id.as_str()]);
        assert_eq!(found("arrakis").await, [messiah.id.as_str()], "the title kept");

        let cheaper = pb::Book { price_cents: 1, ..dune.clone() };
        app.update(&user, cheaper, &["price_cents"], 0).await.unwrap();
        assert_eq!(found("dune").await, [dune.id.as_str()], "other fields leave the index alone");

        app.delete(&user, &dune.id, 0).await.unwrap();
        assert!(found("dune").await.is_empty());
        assert!(found("frank").await.is_empty());
        assert_eq!(found("herbert").await, [messiah.id.as_str()]);
    }

    async fn every_book_committed_is_found_once_while_others_write(backend) {
        let app = spawn_app(backend).await;
        let user = app.user("racer").await;
        let before = create_many(&app, &user, 40, |n| format!("Needle {n}")).await;
        let doomed = create_many(&app, &user, 20, |n| format!("Doomed needle {n}")).await;
        let hay = create_many(&app, &user, 20, |n| format!("Hay {n}")).await;
        let stable: HashSet<String> = ids(&before).into_iter().collect();
        let writing = AtomicUsize::new(4);

        // Each writer creates matching and other books, deletes matching ones and renames others
        // into matches, while two readers walk the search's pages again and again.
        let writer = |writer: usize| {
            let (app, user, writing) = (&app, &user, &writing);
            let doomed: Vec<pb::Book> = doomed.iter().skip(writer).step_by(4).cloned().collect();
            let hay: Vec<pb::Book> = hay.iter().skip(writer).step_by(4).cloned().collect();
            async move {
                for n in 0..15 {
                    app.create(user, book(&format!("Needle {writer}-{n}"), "Writer")).await.unwrap();
                    app.create(user, book(&format!("Straw {writer}-{n}"), "Writer")).await.unwrap();
                }
                for book in doomed {
                    app.delete(user, &book.id, 0).await.unwrap();
                }
                for book in hay {
                    let found = pb::Book { title: format!("{} with a needle", book.title), ..book };
                    app.update(user, found, &["title"], 0).await.unwrap();
                }
                writing.fetch_sub(1, Ordering::SeqCst);
            }
        };
        let reader = || {
            let (app, user, stable, writing) = (&app, &user, &stable, &writing);
            async move {
                let mut walks = 0;
                while walks < 3 || writing.load(Ordering::SeqCst) > 0 {
                    let walked = app.list_all(user, search("NEEDLE", 7)).await;
                    let walked_ids = ids(&walked);
                    assert!(walked_ids.windows(2).all(|w| w[0] > w[1]), "newest first, each once");
                    assert!(walked.iter().all(|b| matches(b, "needle")), "only matches");
                    let seen: HashSet<String> = walked_ids.into_iter().collect();
                    assert!(stable.is_subset(&seen), "every book that matched throughout is found");
                    walks += 1;
                }
                walks
            }
        };
        let (.., first_walks, second_walks) =
            tokio::join!(writer(0), writer(1), writer(2), writer(3), reader(), reader());
        assert!(first_walks >= 3 && second_walks >= 3);

        let books = everything(&app, &user, false).await;
        assert_eq!(books.len(), 40 + 20 + 4 * 30);
        let found = app.list_all(&user, search("needle", 9)).await;
        assert_eq!(ids(&found), expected(&books, "needle"));
        assert_eq!(found.len(), 40 + 20 + 4 * 15, "the doomed gone, the renamed found");
    }

    async fn books_stored_before_the_index_existed_are_found(backend) {
        let books_db = TestDatabase::create(backend);
        let before = "Stored Before the Index";
        migrate_first_only(&books_db, backend);
        insert_directly(&books_db, backend, before);

        let app = spawn_app_on(backend, books_db).await;
        let admin = app.admin("admin").await;
        let found = app.list_all(&admin, pb::ListBooksRequest { all: true, ..search("the index", 5) }).await;
        assert_eq!(found.iter().map(|b| b.title.as_str()).collect::<Vec<_>>(), [before]);
        assert!(app.list_all(&admin, pb::ListBooksRequest { all: true, ..search("after", 5) }).await.is_empty());
    }
}

/// Creates `count` books titled `title(n)`, eight at a time, and returns them.
async fn create_many(
    app: &TestApp,
    token: &str,
    count: usize,
    title: impl Fn(usize) -> String,
) -> Vec<pb::Book> {
    let mut created = Vec::with_capacity(count);
    for n in 0..count {
        created.push(app.create(token, book(&title(n), "Author")).await.unwrap());
    }
    created
}

/// Applies only the first of books-service's migrations, as the version before the search
/// index did.
fn migrate_first_only(database: &TestDatabase, backend: Backend) {
    match backend {
        Backend::Postgres => {
            let mut conn = PgConnection::establish(database.url()).unwrap();
            conn.run_next_migration(POSTGRES_MIGRATIONS).unwrap();
        }
        Backend::Sqlite => {
            let mut conn = sqlite(database.url());
            conn.run_next_migration(SQLITE_MIGRATIONS).unwrap();
        }
    }
}

fn sqlite(url: &str) -> SqliteConnection {
    let path = url.trim_start_matches("sqlite://");
    SqliteConnection::establish(path).unwrap()
}

/// A book titled `title` as that version stored it, owned by a user of another database.
fn insert_directly(database: &TestDatabase, backend: Backend, title: &str) {
    let sql = format!(
        "INSERT INTO books (id, owner_id, title, author, price_cents, search_text, version, \
         created_at, updated_at) VALUES ('{}', '{}', '{title}', 'Someone', 100, '{}', 1, \
         CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        books_service::domain::search_text(title, "Someone"),
    );
    match backend {
        Backend::Postgres => {
            diesel::sql_query(sql)
                .execute(&mut PgConnection::establish(database.url()).unwrap())
                .unwrap();
        }
        Backend::Sqlite => {
            diesel::sql_query(sql)
                .execute(&mut sqlite(database.url()))
                .unwrap();
        }
    };
}

#[tokio::test]
async fn a_database_user_that_may_not_create_pg_trgm_gets_a_start_up_error_saying_what_to_do() {
    let books_db = TestDatabase::create(Backend::Postgres);
    let role = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut owner = PgConnection::establish(books_db.url()).unwrap();
    // May create tables (PostgreSQL 15 no longer lets everyone), not extensions.
    for statement in [
        format!("CREATE ROLE {role} LOGIN PASSWORD '{role}'"),
        format!("GRANT CREATE ON SCHEMA public TO {role}"),
    ] {
        diesel::sql_query(statement).execute(&mut owner).unwrap();
    }
    let (scheme, rest) = books_db.url().split_once("://").unwrap();
    let server = rest.rsplit_once('@').map_or(rest, |(_, server)| server);
    let mut settings = books_service::Settings {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        management: observability::ManagementSettings::on_port(0),
        ..books_service::Settings::default()
    };
    settings.database.url = Some(SecretString::from(format!(
        "{scheme}://{role}:{role}@{server}"
    )));
    settings.redis.url = Some(SecretString::from(test_support::redis_url()));
    settings.redis.key_prefix = test_support::unique_redis_prefix();

    let error = books_service::Application::build(settings)
        .await
        .err()
        .expect("started without pg_trgm");

    let message = error.to_string();
    assert!(
        message.contains("needs the PostgreSQL extension pg_trgm"),
        "{message}"
    );
    assert!(
        message.contains("run CREATE EXTENSION pg_trgm in this database"),
        "{message}"
    );
    // Roles outlive databases: this one goes with what the first migration made it own.
    for statement in [format!("DROP OWNED BY {role}"), format!("DROP ROLE {role}")] {
        diesel::sql_query(statement).execute(&mut owner).unwrap();
    }
}

#[tokio::test]
async fn sqlite_search_stays_right_after_vacuum_rewrites_the_file() {
    let app = spawn_app(Backend::Sqlite).await;
    let user = app.user("tidy").await;
    let books = create_many(&app, &user, 30, |n| format!("Tidy {n}")).await;
    // Gaps in the rowids: what VACUUM would close if it renumbered them.
    for book in books.iter().step_by(3) {
        app.delete(&user, &book.id, 0).await.unwrap();
    }

    diesel::sql_query("VACUUM")
        .execute(&mut sqlite(app.books_database_url()))
        .unwrap();
    let newest = app
        .create(&user, book("Tidy at last", "Author"))
        .await
        .unwrap();

    let remaining = everything(&app, &user, false).await;
    assert_eq!(remaining.len(), 21);
    for query in ["tidy", "tidy 2", "y 1", "at last"] {
        let found = app.list_all(&user, search(query, 4)).await;
        assert_eq!(ids(&found), expected(&remaining, query), "{query:?}");
    }
    assert_eq!(
        ids(&app.list_all(&user, search("at last", 4)).await),
        [newest.id]
    );
}
