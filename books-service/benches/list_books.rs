//! ListBooks latency over real gRPC with 1,000,000 books of one user in PostgreSQL: the first page
//! and a page deep behind a cursor, 20 books each.
//!
//! Run: `cargo bench -p books-service --bench list_books` with PostgreSQL and Redis reachable
//! (`TEST_DATABASE_URL`, `TEST_REDIS_URL`, defaults on 127.0.0.1; `scripts/test` documents
//! both). The database is created for the run and dropped after.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use auth_service::keys::{KeyKind, write_new_key};
use books_service::db::schema::books;
use criterion::{Criterion, criterion_group, criterion_main};
use diesel::{Connection, ExpressionMethods, PgConnection, RunQueryDsl};
use proto::auth::v1 as auth_pb;
use proto::auth::v1::auth_service_client::AuthServiceClient;
use proto::books::v1 as pb;
use proto::books::v1::books_service_client::BooksServiceClient;
use secrecy::SecretString;
use test_support::{Backend, TestDatabase};
use tokio_util::sync::CancellationToken;
use tonic::Request;

const PAGE: i32 = 20;

/// A million books under `cargo bench`; a thousand when `cargo test` runs this as a smoke test.
fn book_count() -> usize {
    if std::env::args().any(|arg| arg == "--bench") {
        1_000_000
    } else {
        1_000
    }
}

struct Stack {
    books: BooksServiceClient<tonic::transport::Channel>,
    token: String,
    owner_id: String,
    _dbs: (TestDatabase, TestDatabase),
    _keys: tempfile::TempDir,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn start() -> Stack {
    let auth_db = TestDatabase::create(Backend::Postgres);
    let books_db = TestDatabase::create(Backend::Postgres);
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
    seed(books_db.url(), &owner_id, book_count());
    Stack {
        books: BooksServiceClient::connect(format!("http://{books_addr}"))
            .await
            .unwrap(),
        token: tokens.tokens.unwrap().access_token,
        owner_id,
        _dbs: (auth_db, books_db),
        _keys: keys,
        _shutdown: shutdown.drop_guard(),
    }
}

/// Inserts the books in batches, oldest first, as created one by one would be.
fn seed(url: &str, owner_id: &str, count: usize) {
    let mut conn = PgConnection::establish(url).unwrap();
    let now = chrono::Utc::now().naive_utc();
    for batch in 0..count / 1_000 {
        let rows: Vec<_> = (0..1_000)
            .map(|n| {
                let number = batch * 1_000 + n;
                (
                    books::id.eq(uuid::Uuid::now_v7().to_string()),
                    books::owner_id.eq(owner_id.to_owned()),
                    books::title.eq(format!("Book {number}")),
                    books::author.eq(format!("Author {}", number % 500)),
                    books::price_cents.eq(999_i64),
                    books::search_text.eq(format!("book {number}\nauthor {}", number % 500)),
                    books::version.eq(1_i64),
                    books::created_at.eq(now),
                    books::updated_at.eq(now),
                )
            })
            .collect();
        diesel::insert_into(books::table)
            .values(rows)
            .execute(&mut conn)
            .unwrap();
    }
    diesel::sql_query("ANALYZE books")
        .execute(&mut conn)
        .unwrap();
}

fn request(token: &str, page_token: &str) -> Request<pb::ListBooksRequest> {
    let mut request = Request::new(pb::ListBooksRequest {
        page_size: PAGE,
        page_token: page_token.to_owned(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn list_books(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stack = runtime.block_on(start());
    let mut client = stack.books.clone();
    // A token pointing all but the last thousand books deep (999,000 under `cargo bench`):
    // walk there once with the largest pages.
    let deep_token = runtime.block_on(async {
        let mut token = String::new();
        for _ in 0..(book_count() - 1_000).max(100) / 100 {
            let mut request = request(&stack.token, &token);
            request.get_mut().page_size = 100;
            token = client
                .list_books(request)
                .await
                .unwrap()
                .into_inner()
                .next_page_token;
        }
        token
    });
    assert!(!stack.owner_id.is_empty());

    let mut group = c.benchmark_group("list_books_postgres");
    group.measurement_time(Duration::from_secs(10));
    for (name, token) in [
        ("first_page", String::new()),
        ("deep_cursor_page", deep_token),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let mut client = stack.books.clone();
                let request = request(&stack.token, &token);
                async move {
                    let page = client.list_books(request).await.unwrap().into_inner();
                    assert_eq!(page.books.len(), 20);
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, list_books);
criterion_main!(benches);
