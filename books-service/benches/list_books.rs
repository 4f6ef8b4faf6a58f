//! ListBooks latency over real gRPC, on PostgreSQL and on SQLite, with `LIST_BOOKS_ROWS` books of
//! one user (10,000 by default under `cargo bench`, 1,000 when `cargo test` runs this as a smoke
//! test; the figures in docs/benchmarks.md are at 1,000,000): the first page, a page deep behind
//! a cursor, and search pages for a rare, a selective and a common term, 20 books each at most.
//!
//! Run: `LIST_BOOKS_ROWS=1000000 cargo bench -p books-service --bench list_books` with
//! PostgreSQL and Redis reachable (`TEST_DATABASE_URL`, `TEST_REDIS_URL`, defaults on 127.0.0.1;
//! `scripts/test` documents both). The databases are created for the run and dropped after.
//!
//! Titles are three words drawn from 264 common English ones and authors a first and a last name
//! (51 × 91), so every word is in about 1 % of the books, as in a real catalogue's common
//! vocabulary: a hard case for trigram indexes, whose rarest trigrams still come from common
//! words.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use auth_service::keys::{KeyKind, write_new_key};
use criterion::{Criterion, criterion_group, criterion_main};
use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection, sql_query};
use grpc_conventions::PageToken;
use proto::auth::v1 as auth_pb;
use proto::auth::v1::auth_service_client::AuthServiceClient;
use proto::books::v1 as pb;
use proto::books::v1::books_service_client::BooksServiceClient;
use secrecy::SecretString;
use test_support::{Backend, TestDatabase};
use tokio_util::sync::CancellationToken;
use tonic::Request;

const PAGE: i32 = 20;

const TITLE_WORDS: &[&str] = &[
    "Shadow",
    "River",
    "Night",
    "Garden",
    "Winter",
    "Summer",
    "City",
    "House",
    "Stone",
    "Silver",
    "Golden",
    "Glass",
    "Iron",
    "Fire",
    "Water",
    "Wind",
    "Storm",
    "Sea",
    "Ocean",
    "Island",
    "Mountain",
    "Valley",
    "Forest",
    "Desert",
    "Road",
    "Bridge",
    "Tower",
    "Castle",
    "King",
    "Queen",
    "Prince",
    "Princess",
    "Knight",
    "Dragon",
    "Wolf",
    "Raven",
    "Crow",
    "Fox",
    "Bear",
    "Lion",
    "Tiger",
    "Eagle",
    "Hawk",
    "Dream",
    "Memory",
    "Secret",
    "Letter",
    "Promise",
    "Lie",
    "Truth",
    "Story",
    "Song",
    "Dance",
    "Game",
    "War",
    "Peace",
    "Love",
    "Hope",
    "Heart",
    "Soul",
    "Mind",
    "Body",
    "Blood",
    "Bone",
    "Ash",
    "Dust",
    "Light",
    "Dark",
    "Moon",
    "Sun",
    "Star",
    "Sky",
    "Cloud",
    "Rain",
    "Snow",
    "Ice",
    "Frost",
    "Flame",
    "Ember",
    "Spark",
    "Shade",
    "Ghost",
    "Spirit",
    "Angel",
    "Devil",
    "Witch",
    "Wizard",
    "Magic",
    "Spell",
    "Curse",
    "Crown",
    "Throne",
    "Sword",
    "Shield",
    "Blade",
    "Arrow",
    "Bow",
    "Spear",
    "Empire",
    "Kingdom",
    "Republic",
    "Nation",
    "World",
    "Earth",
    "Time",
    "Hour",
    "Day",
    "Morning",
    "Evening",
    "Midnight",
    "Dawn",
    "Dusk",
    "Year",
    "Century",
    "Age",
    "History",
    "Future",
    "Past",
    "Man",
    "Woman",
    "Child",
    "Girl",
    "Boy",
    "Mother",
    "Father",
    "Daughter",
    "Son",
    "Brother",
    "Sister",
    "Friend",
    "Stranger",
    "Enemy",
    "Lover",
    "Widow",
    "Orphan",
    "Captain",
    "Soldier",
    "Hunter",
    "Thief",
    "Doctor",
    "Teacher",
    "Student",
    "Lady",
    "Lord",
    "Master",
    "Servant",
    "Guest",
    "Traveller",
    "Pilgrim",
    "Prisoner",
    "Rebel",
    "Spy",
    "Killer",
    "Keeper",
    "Maker",
    "Reader",
    "Writer",
    "Painter",
    "Singer",
    "Dancer",
    "Dreamer",
    "Last",
    "First",
    "Lost",
    "Hidden",
    "Broken",
    "Silent",
    "Quiet",
    "Wild",
    "Bright",
    "Deep",
    "Long",
    "Little",
    "Great",
    "Small",
    "Old",
    "New",
    "Young",
    "Ancient",
    "Sacred",
    "Forgotten",
    "Burning",
    "Frozen",
    "Falling",
    "Rising",
    "Running",
    "Sleeping",
    "Dying",
    "Living",
    "Hollow",
    "Empty",
    "Open",
    "Distant",
    "Northern",
    "Southern",
    "Western",
    "Eastern",
    "Black",
    "White",
    "Red",
    "Blue",
    "Green",
    "Grey",
    "Scarlet",
    "Violet",
    "Amber",
    "Crimson",
    "Book",
    "Map",
    "Key",
    "Door",
    "Window",
    "Wall",
    "Gate",
    "Room",
    "Library",
    "Museum",
    "School",
    "Church",
    "Temple",
    "Palace",
    "Harbour",
    "Station",
    "Train",
    "Ship",
    "Boat",
    "Journey",
    "Voyage",
    "Return",
    "Escape",
    "Flight",
    "Fall",
    "Rise",
    "End",
    "Beginning",
    "Edge",
    "Heaven",
    "Hell",
    "Paradise",
    "Street",
    "Market",
    "Village",
    "Town",
    "Country",
    "Land",
    "Field",
    "Orchard",
    "Meadow",
    "Rose",
    "Lily",
    "Oak",
    "Willow",
    "Pine",
    "Apple",
    "Honey",
    "Salt",
    "Bread",
    "Wine",
    "Tea",
    "Coffee",
    "Paper",
    "Ink",
    "Clock",
    "Mirror",
];
const FIRST_NAMES: &[&str] = &[
    "Anna", "Ben", "Clara", "David", "Elena", "Frank", "Grace", "Henry", "Iris", "Jack", "Karen",
    "Leo", "Maria", "Nina", "Oscar", "Paula", "Quentin", "Rosa", "Sam", "Tara", "Ursula", "Victor",
    "Wendy", "Xavier", "Yara", "Zoe", "Alan", "Beth", "Carl", "Dora", "Emil", "Fiona", "George",
    "Hana", "Ivan", "Julia", "Kurt", "Lena", "Marco", "Nora", "Otto", "Petra", "Rafael", "Sofia",
    "Tomas", "Uma", "Vera", "Walter", "Ximena", "Yusuf", "Zelda",
];
const LAST_NAMES: &[&str] = &[
    "Smith",
    "Jones",
    "Brown",
    "Taylor",
    "Wilson",
    "Evans",
    "Thomas",
    "Roberts",
    "Johnson",
    "Walker",
    "Wright",
    "Robinson",
    "Thompson",
    "White",
    "Hughes",
    "Edwards",
    "Green",
    "Hall",
    "Wood",
    "Harris",
    "Martin",
    "Jackson",
    "Clarke",
    "Lewis",
    "Young",
    "Allen",
    "King",
    "Scott",
    "Baker",
    "Adams",
    "Mitchell",
    "Turner",
    "Phillips",
    "Campbell",
    "Parker",
    "Carter",
    "Morris",
    "Cooper",
    "Ward",
    "Murphy",
    "Bailey",
    "Bell",
    "Cook",
    "Collins",
    "Foster",
    "Gray",
    "Howard",
    "Kelly",
    "Price",
    "Reed",
    "Rogers",
    "Russell",
    "Sanders",
    "Stewart",
    "Watson",
    "Webb",
    "West",
    "Williams",
    "Garcia",
    "Miller",
    "Davis",
    "Lopez",
    "Gonzalez",
    "Moore",
    "Lee",
    "Perez",
    "Anderson",
    "Hernandez",
    "Sato",
    "Tanaka",
    "Kim",
    "Nguyen",
    "Chen",
    "Wang",
    "Singh",
    "Kumar",
    "Novak",
    "Kowalski",
    "Dubois",
    "Moreau",
    "Rossi",
    "Ricci",
    "Muller",
    "Schmidt",
    "Fischer",
    "Weber",
    "Becker",
    "Larsen",
    "Hansen",
    "Nielsen",
    "Olsen",
];

/// The searches measured, each with the share of books it matches (from the word counts).
const SEARCHES: &[(&str, &str)] = &[
    // Two title words side by side: ~0.003 % of the books.
    ("search_rare_term", "silver dragon"),
    // A first and a last name: ~0.02 %.
    ("search_selective_term", "clara nguyen"),
    // One word, also inside others (knight, midnight): ~3 %.
    ("search_common_term", "night"),
];

fn book_count() -> usize {
    match std::env::var("LIST_BOOKS_ROWS") {
        Ok(rows) => rows.parse().expect("LIST_BOOKS_ROWS is a number of books"),
        Err(_) if std::env::args().any(|arg| arg == "--bench") => 10_000,
        Err(_) => 1_000,
    }
}

struct Stack {
    books: BooksServiceClient<tonic::transport::Channel>,
    token: String,
    /// The id of the book that is the oldest but 1,000 (or the oldest, with fewer books).
    deep_id: String,
    _dbs: (TestDatabase, TestDatabase),
    _keys: tempfile::TempDir,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn start(backend: Backend, count: usize) -> Stack {
    let auth_db = TestDatabase::create(Backend::Postgres);
    let books_db = TestDatabase::create(backend);
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("signing.pem");
    write_new_key(&key_file, KeyKind::Ed25519).unwrap();
    let prefix = test_support::unique_redis_prefix();
    let redis = test_support::redis_url();
    let shutdown = CancellationToken::new();

    let auth = auth_service::Application::build(auth_service::Settings::for_tests(
        auth_db.url(),
        &redis,
        &prefix,
        key_file,
    ))
    .await
    .unwrap();
    let auth_addr = auth.local_addr();
    tokio::spawn(auth.run_until_stopped(shutdown.clone()));

    let mut settings = books_service::Settings {
        listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        management: observability::ManagementSettings::on_port(0),
        ..books_service::Settings::default()
    };
    settings.database.url = Some(SecretString::from(books_db.url().to_owned()));
    settings.redis.url = Some(SecretString::from(redis));
    settings.redis.key_prefix = prefix;
    settings.auth.url = format!("http://{auth_addr}");
    let books_app = books_service::Application::build(settings).await.unwrap();
    let books_addr = books_app.local_addr();
    tokio::spawn(books_app.run_until_stopped(shutdown.clone()));

    let tokens = AuthServiceClient::connect(format!("http://{auth_addr}"))
        .await
        .unwrap()
        .register(auth_pb::RegisterRequest {
            username: "bencher".to_owned(),
            email: "bencher@example.org".to_owned(),
            password: "correct horse battery".to_owned(),
            client: None,
        })
        .await
        .unwrap()
        .into_inner();
    let owner_id = tokens.user.unwrap().id;
    let first_ms = chrono::Utc::now().timestamp_millis() - i64::try_from(count).unwrap();
    let started = std::time::Instant::now();
    seed(backend, books_db.url(), &owner_id, first_ms, count);
    eprintln!(
        "seeded {count} books on {backend:?} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Stack {
        books: BooksServiceClient::connect(format!("http://{books_addr}"))
            .await
            .unwrap(),
        token: tokens.tokens.unwrap().access_token,
        deep_id: seeded_id(first_ms + i64::try_from(count.min(1_000)).unwrap() - 1),
        _dbs: (auth_db, books_db),
        _keys: keys,
        _shutdown: shutdown.drop_guard(),
    }
}

/// The id the seed gives the book created at `ms`: a UUID v7 of that millisecond (one book per
/// millisecond, oldest first), so ids sort in creation order as the service's do.
fn seeded_id(ms: i64) -> String {
    let hex = format!("{ms:012x}");
    format!("{}-{}-7000-8000-000000000000", &hex[..8], &hex[8..])
}

/// Inserts `count` books with one statement per backend, built in the database from the word
/// lists: one insert per row would take hours at a million. The service's migrations have run,
/// so SQLite's triggers index each book as it is inserted; PostgreSQL's secondary indexes are
/// dropped and re-created from their own definitions around the insert, as a bulk load does.
fn seed(backend: Backend, url: &str, owner_id: &str, first_ms: i64, count: usize) {
    let count = i64::try_from(count).unwrap();
    let (words, firsts, lasts) = (TITLE_WORDS.len(), FIRST_NAMES.len(), LAST_NAMES.len());
    // Multiplicative hashes of the row number pick the words, so neighbours differ.
    let picks = format!(
        "(SELECT word FROM title_words WHERE i = h1 % {words}) || ' ' || \
         (SELECT word FROM title_words WHERE i = (h1 / {words}) % {words}) || ' ' || \
         (SELECT word FROM title_words WHERE i = (h1 / {words} / {words}) % {words}) AS title, \
         (SELECT word FROM first_names WHERE i = h2 % {firsts}) || ' ' || \
         (SELECT word FROM last_names WHERE i = (h2 / {firsts}) % {lasts}) AS author"
    );
    let hashes = "n, (n * 2654435761) % 4294967296 AS h1, (n * 2246822519) % 4294967296 AS h2";
    let columns = "INSERT INTO books (id, owner_id, title, author, price_cents, search_text, \
                   version, created_at, updated_at)";
    match backend {
        Backend::Postgres => {
            let mut conn = PgConnection::establish(url).unwrap();
            create_word_tables(&mut conn);
            #[derive(diesel::QueryableByName)]
            struct Index {
                #[diesel(sql_type = Text)]
                indexdef: String,
                #[diesel(sql_type = Text)]
                indexname: String,
            }
            let indexes: Vec<Index> = sql_query(
                "SELECT indexdef::text AS indexdef, indexname::text AS indexname FROM pg_indexes \
                 WHERE tablename = 'books' AND indexname <> 'books_pkey'",
            )
            .load(&mut conn)
            .unwrap();
            for index in &indexes {
                sql_query(format!("DROP INDEX {}", index.indexname))
                    .execute(&mut conn)
                    .unwrap();
            }
            sql_query(format!(
                "{columns} SELECT substr(hex, 1, 8) || '-' || substr(hex, 9, 4) || \
                 '-7000-8000-000000000000', $1, title, author, 999, \
                 lower(title || chr(10) || author), 1, now(), now() \
                 FROM (SELECT lpad(to_hex($2 + n), 12, '0') AS hex, {picks} \
                 FROM (SELECT {hashes} FROM generate_series(0::bigint, $3 - 1) AS n) AS hashed) AS picked"
            ))
            .bind::<Text, _>(owner_id)
            .bind::<BigInt, _>(first_ms)
            .bind::<BigInt, _>(count)
            .execute(&mut conn)
            .unwrap();
            sql_query("SET maintenance_work_mem = '256MB'")
                .execute(&mut conn)
                .unwrap();
            for index in &indexes {
                sql_query(&index.indexdef).execute(&mut conn).unwrap();
            }
            sql_query("VACUUM ANALYZE books")
                .execute(&mut conn)
                .unwrap();
        }
        Backend::Sqlite => {
            let mut conn =
                SqliteConnection::establish(url.trim_start_matches("sqlite://")).unwrap();
            create_word_tables(&mut conn);
            sql_query(format!(
                "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < ?3 - 1), \
                 hashed AS (SELECT {hashes} FROM seq), \
                 picked AS (SELECT printf('%012x', ?2 + n) AS hex, {picks} FROM hashed) \
                 {columns} SELECT substr(hex, 1, 8) || '-' || substr(hex, 9, 4) || \
                 '-7000-8000-000000000000', ?1, title, author, 999, \
                 lower(title || char(10) || author), 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP \
                 FROM picked"
            ))
            .bind::<Text, _>(owner_id)
            .bind::<BigInt, _>(first_ms)
            .bind::<BigInt, _>(count)
            .execute(&mut conn)
            .unwrap();
            sql_query("ANALYZE").execute(&mut conn).unwrap();
        }
    }
}

/// The word lists as temporary tables `title_words`, `first_names` and `last_names` of
/// `(i, word)`, `i` counting from 0.
fn create_word_tables<C: Connection>(conn: &mut C)
where
    diesel::query_builder::SqlQuery: diesel::query_dsl::methods::ExecuteDsl<C>,
{
    for (table, list) in [
        ("title_words", TITLE_WORDS),
        ("first_names", FIRST_NAMES),
        ("last_names", LAST_NAMES),
    ] {
        sql_query(format!(
            "CREATE TEMPORARY TABLE {table} (i INTEGER PRIMARY KEY, word TEXT NOT NULL)"
        ))
        .execute(conn)
        .unwrap();
        // Letters only, so they can stand in the statement as they are.
        assert!(
            list.iter()
                .all(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
        );
        let rows: Vec<String> = list
            .iter()
            .enumerate()
            .map(|(i, word)| format!("({i}, '{word}')"))
            .collect();
        sql_query(format!("INSERT INTO {table} VALUES {}", rows.join(", ")))
            .execute(conn)
            .unwrap();
    }
}

fn request(token: &str, page_token: &str, query: &str) -> Request<pb::ListBooksRequest> {
    let mut request = Request::new(pb::ListBooksRequest {
        page_size: PAGE,
        page_token: page_token.to_owned(),
        query: query.to_owned(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn list_books(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let count = book_count();
    for (backend, name) in [
        (Backend::Postgres, "list_books_postgres"),
        (Backend::Sqlite, "list_books_sqlite"),
    ] {
        let stack = runtime.block_on(start(backend, count));
        let mut cases = vec![
            ("first_page", String::new(), ""),
            (
                "deep_cursor_page",
                PageToken::after(&stack.deep_id).encode(),
                "",
            ),
        ];
        cases.extend(
            SEARCHES
                .iter()
                .map(|(case, query)| (*case, String::new(), *query)),
        );

        let mut group = c.benchmark_group(name);
        group.measurement_time(Duration::from_secs(10));
        for (case, token, query) in cases {
            let found = runtime.block_on(async {
                let mut client = stack.books.clone();
                let page = client.list_books(request(&stack.token, &token, query));
                page.await.unwrap().into_inner().books.len()
            });
            eprintln!("{name}/{case}: {found} books on the page");
            group.bench_function(case, |b| {
                b.to_async(&runtime).iter(|| {
                    let mut client = stack.books.clone();
                    let request = request(&stack.token, &token, query);
                    async move {
                        let page = client.list_books(request).await.unwrap().into_inner();
                        assert_eq!(page.books.len(), found);
                    }
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, list_books);
criterion_main!(benches);
