//! `spawn_app`: auth-service and books-service on port 0, each with a fresh database on the
//! test's backend, sharing a private Redis namespace, with one helper per RPC.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use auth_service::accounts::Registration;
use auth_service::keys::{KeyKind, write_new_key};
use books_service::Settings;
use proto::auth::v1 as auth_pb;
use proto::auth::v1::auth_service_client::AuthServiceClient;
use proto::books::v1 as pb;
use proto::books::v1::books_service_client::BooksServiceClient;
use revocation::CheckSettings;
use secrecy::SecretString;
use tempfile::TempDir;
use test_support::{Backend, TestDatabase};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic::{Request, Status};

pub const PASSWORD: &str = "correct horse battery";

/// A running service and how to stop it.
struct Running {
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    fn spawn(
        server: impl Future<Output = anyhow::Result<()>> + Send + 'static,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            shutdown,
            server: tokio::spawn(server),
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.unwrap().unwrap();
    }
}

pub struct TestApp {
    pub books: BooksServiceClient<Channel>,
    pub books_addr: SocketAddr,
    pub auth: AuthServiceClient<Channel>,
    pub auth_settings: auth_service::Settings,
    pub books_settings: Settings,
    keys_dir: TempDir,
    auth_server: Option<Running>,
    books_server: Option<Running>,
    // Dropped after the services stop.
    _auth_db: TestDatabase,
    books_db: TestDatabase,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, CheckSettings::default()).await
}

/// A stack whose books-service checks revocation as `revocation` says.
pub async fn spawn_app_with(backend: Backend, revocation: CheckSettings) -> TestApp {
    start_stack(backend, revocation, TestDatabase::create(backend)).await
}

/// A stack whose books-service starts on `books_db` as it is: a database that an earlier
/// version of the service migrated and filled, say.
pub async fn spawn_app_on(backend: Backend, books_db: TestDatabase) -> TestApp {
    start_stack(backend, CheckSettings::default(), books_db).await
}

async fn start_stack(
    backend: Backend,
    revocation: CheckSettings,
    books_db: TestDatabase,
) -> TestApp {
    test_support::init_tracing();
    let auth_db = TestDatabase::create(backend);
    let keys_dir = tempfile::tempdir().unwrap();
    let key_file = keys_dir.path().join("signing.pem");
    write_new_key(&key_file, KeyKind::Ed25519).unwrap();
    let prefix = test_support::unique_redis_prefix();

    let auth_settings = auth_service::Settings::for_tests(
        auth_db.url(),
        &test_support::redis_url(),
        &prefix,
        key_file,
    );
    let (auth_addr, auth_server) = start_auth(auth_settings.clone()).await;

    let mut books_settings = Settings {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        management: observability::ManagementSettings::on_port(0),
        shutdown_grace_secs: 1,
        ..Settings::default()
    };
    books_settings.database.url = Some(SecretString::from(books_db.url().to_owned()));
    books_settings.redis.url = Some(SecretString::from(test_support::redis_url()));
    books_settings.redis.key_prefix = prefix;
    // Generous: a loaded CI machine must not turn a slow answer into UNAVAILABLE.
    books_settings.redis.timeout_ms = 2_000;
    books_settings.revocation = revocation;
    books_settings.auth.url = format!("http://{auth_addr}");
    books_settings.auth.jwks_min_refetch_ms = 100;
    let books_app = books_service::Application::build(books_settings.clone())
        .await
        .expect("books-service failed to start");
    let books_addr = books_app.local_addr();
    let shutdown = CancellationToken::new();
    let books_server = Running::spawn(books_app.run_until_stopped(shutdown.clone()), shutdown);

    TestApp {
        books: BooksServiceClient::new(channel(books_addr).await),
        books_addr,
        auth: AuthServiceClient::new(channel(auth_addr).await),
        auth_settings,
        books_settings,
        keys_dir,
        auth_server: Some(auth_server),
        books_server: Some(books_server),
        _auth_db: auth_db,
        books_db,
    }
}

async fn start_auth(settings: auth_service::Settings) -> (SocketAddr, Running) {
    let app = auth_service::Application::build(settings)
        .await
        .expect("auth-service failed to start");
    let addr = app.local_addr();
    let shutdown = CancellationToken::new();
    (
        addr,
        Running::spawn(app.run_until_stopped(shutdown.clone()), shutdown),
    )
}

pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

pub fn book(title: &str, author: &str) -> pb::Book {
    pb::Book {
        title: title.to_owned(),
        author: author.to_owned(),
        ..pb::Book::default()
    }
}

impl TestApp {
    /// Registers `username` and returns its access token.
    pub async fn user(&self, username: &str) -> String {
        self.auth
            .clone()
            .register(auth_pb::RegisterRequest {
                username: username.to_owned(),
                email: format!("{username}@example.org"),
                password: PASSWORD.to_owned(),
                client: None,
            })
            .await
            .unwrap()
            .into_inner()
            .tokens
            .unwrap()
            .access_token
    }

    /// Creates an admin the way `auth-service create-admin` does, and returns its access token.
    pub async fn admin(&self, username: &str) -> String {
        let registration = Registration {
            username: username.to_owned(),
            email: format!("{username}@example.org"),
            password: PASSWORD.to_owned(),
        };
        auth_service::startup::create_admin(&self.auth_settings, registration)
            .await
            .unwrap();
        self.auth
            .clone()
            .login(auth_pb::LoginRequest {
                username: username.to_owned(),
                password: PASSWORD.to_owned(),
                client: None,
            })
            .await
            .unwrap()
            .into_inner()
            .tokens
            .unwrap()
            .access_token
    }

    pub async fn logout(&self, token: &str) {
        self.auth
            .clone()
            .logout(bearer(auth_pb::LogoutRequest {}, token))
            .await
            .unwrap();
    }

    pub async fn create(&self, token: &str, book: pb::Book) -> Result<pb::Book, Status> {
        self.books
            .clone()
            .create_book(bearer(pb::CreateBookRequest { book: Some(book) }, token))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn get(&self, token: &str, id: &str) -> Result<pb::Book, Status> {
        self.books
            .clone()
            .get_book(bearer(pb::GetBookRequest { id: id.to_owned() }, token))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn list(
        &self,
        token: &str,
        request: pb::ListBooksRequest,
    ) -> Result<pb::ListBooksResponse, Status> {
        self.books
            .clone()
            .list_books(bearer(request, token))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Every page of `request`, following `next_page_token`.
    pub async fn list_all(&self, token: &str, mut request: pb::ListBooksRequest) -> Vec<pb::Book> {
        let mut books = Vec::new();
        loop {
            let page = self.list(token, request.clone()).await.unwrap();
            books.extend(page.books);
            if page.next_page_token.is_empty() {
                return books;
            }
            request.page_token = page.next_page_token;
        }
    }

    pub async fn update(
        &self,
        token: &str,
        book: pb::Book,
        paths: &[&str],
        expected_version: i64,
    ) -> Result<pb::Book, Status> {
        let update_mask = prost_types::FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        };
        self.books
            .clone()
            .update_book(bearer(
                pb::UpdateBookRequest {
                    book: Some(book),
                    update_mask: Some(update_mask),
                    expected_version,
                },
                token,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn delete(&self, token: &str, id: &str, expected_version: i64) -> Result<(), Status> {
        self.books
            .clone()
            .delete_book(bearer(
                pb::DeleteBookRequest {
                    id: id.to_owned(),
                    expected_version,
                },
                token,
            ))
            .await
            .map(drop)
    }

    pub fn books_database_url(&self) -> &str {
        self.books_db.url()
    }

    /// Overwrites the stored ISBN and title of book `id` behind the service's back, through
    /// the test's own connection: values that an older, laxer rule might have let in.
    pub async fn store_directly(&self, id: &str, isbn: &str, title: &str) {
        use books_service::db::schema::books;
        use diesel::prelude::*;

        let settings = database::DatabaseSettings {
            url: Some(SecretString::from(self.books_database_url().to_owned())),
            ..database::DatabaseSettings::default()
        };
        let database = database::Database::connect(&settings, "").unwrap();
        let (id, isbn, title) = (id.to_owned(), isbn.to_owned(), title.to_owned());
        let updated = database
            .run(move |conn| -> Result<_, books_service::error::BooksError> {
                Ok(diesel::update(books::table.find(id))
                    .set((books::isbn.eq(isbn), books::title.eq(title)))
                    .execute(conn)?)
            })
            .await
            .unwrap();
        assert_eq!(updated, 1, "no such book");
    }

    /// Restarts auth-service at the same address with a new signing key, the old one still
    /// published; books-service keeps running.
    pub async fn rotate_auth_key(&mut self) -> PathBuf {
        let new_key = self.keys_dir.path().join("next.pem");
        write_new_key(&new_key, KeyKind::Ed25519).unwrap();
        let old_key = self
            .auth_settings
            .tokens
            .signing_key_file
            .replace(new_key.clone())
            .unwrap();
        self.auth_settings.tokens.previous_key_files = vec![old_key];
        let addr: SocketAddr = self
            .books_settings
            .auth
            .url
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        if let Some(running) = self.auth_server.take() {
            running.stop().await;
        }
        self.auth_settings.listen_addr = addr;
        let (_, running) = start_auth(self.auth_settings.clone()).await;
        self.auth_server = Some(running);
        self.auth = AuthServiceClient::new(channel(addr).await);
        // A real rotation comes long after books-service last fetched the keys; without this
        // wait the first token of the new key could fall within the minimum refetch interval.
        tokio::time::sleep(Duration::from_millis(
            self.books_settings.auth.jwks_min_refetch_ms,
        ))
        .await;
        new_key
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for running in [&self.auth_server, &self.books_server]
            .into_iter()
            .flatten()
        {
            running.shutdown.cancel();
        }
    }
}
