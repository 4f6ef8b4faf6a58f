//! The whole bookstore in one process, for trying it out and for local development:
//! auth-service, books-service and the gateway on their usual ports, SQLite files and a
//! signing key in a data folder (created on the first run, reused after), and one in-process
//! revocation store shared by the three.
//!
//! Production runs the three services as separate binaries against PostgreSQL and Redis.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use auth_service::keys::{KeyKind, write_new_key};
use revocation::{Checker, MemoryStore, Revocations};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

/// Where the stack keeps its state and listens; everything else comes from each service's
/// own settings (`AUTH__…`, `BOOKS__…`, `GATEWAY__…`).
#[derive(Debug, Clone)]
pub struct StackSettings {
    pub data_dir: PathBuf,
    pub host: IpAddr,
    pub http_port: u16,
    pub auth_port: u16,
    pub books_port: u16,
    pub auth: auth_service::Settings,
    pub books: books_service::Settings,
    pub gateway: gateway::Settings,
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("data folder {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("signing key: {0}")]
    Key(#[from] auth_service::keys::KeyError),
    #[error("auth-service: {0}")]
    Auth(#[from] auth_service::StartupError),
    #[error("books-service: {0}")]
    Books(#[from] books_service::StartupError),
    #[error("gateway: {0}")]
    Gateway(#[from] gateway::StartupError),
}

/// Where each part of a running stack listens.
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    pub http: SocketAddr,
    pub auth: SocketAddr,
    pub books: SocketAddr,
}

/// The three services, built and bound.
pub struct Stack {
    auth: auth_service::Application,
    books: books_service::Application,
    gateway: gateway::Application,
}

/// The file the signing key is kept in.
pub fn signing_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("signing-key.pem")
}

impl StackSettings {
    /// Checks the three services' settings, so that a bad one stops the stack before anything
    /// is created or started (each service checks its own again when it is built).
    ///
    /// # Errors
    /// The first invalid key, named by its service.
    pub fn validate(&self) -> Result<(), StackError> {
        self.auth
            .validate()
            .map_err(|e| StackError::Auth(auth_service::StartupError::Settings(e)))?;
        self.books
            .validate()
            .map_err(|e| StackError::Books(books_service::StartupError::Settings(e)))?;
        self.gateway
            .validate()
            .map_err(|e| StackError::Gateway(gateway::StartupError::Settings(e)))?;
        Ok(())
    }
}

impl Stack {
    /// Creates the data folder and the signing key when missing, then builds the services
    /// around one shared in-process revocation store. Redis settings are ignored: in one
    /// process there is nothing to share it with.
    ///
    /// # Errors
    /// Invalid settings, an unusable data folder or a service that cannot start.
    pub async fn build(mut settings: StackSettings) -> Result<Self, StackError> {
        settings.validate()?;
        let data_dir = settings.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| StackError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let key = signing_key_path(&data_dir);
        if !key.exists() {
            let created = write_new_key(&key, KeyKind::Ed25519)?;
            tracing::info!(kid = created.kid(), path = %key.display(), "signing key created");
        }
        let sqlite = |name: &str| {
            Some(SecretString::from(format!(
                "sqlite://{}",
                data_dir.join(name).display()
            )))
        };
        let store = Arc::new(MemoryStore::default());

        let auth_settings = &mut settings.auth;
        auth_settings.listen_addr = SocketAddr::new(settings.host, settings.auth_port);
        auth_settings.database.url = auth_settings
            .database
            .url
            .take()
            .or_else(|| sqlite("auth.db"));
        auth_settings.tokens.signing_key_file.get_or_insert(key);
        let auth = auth_service::Application::build_with_store(
            settings.auth,
            Revocations::Memory(Arc::clone(&store)),
        )
        .await?;

        let books_settings = &mut settings.books;
        books_settings.listen_addr = SocketAddr::new(settings.host, settings.books_port);
        books_settings.database.url = books_settings
            .database
            .url
            .take()
            .or_else(|| sqlite("books.db"));
        books_settings.auth.url = url_of(auth.local_addr());
        let books = books_service::Application::build_with_revocations(
            settings.books,
            Checker::Memory(Arc::clone(&store)),
        )
        .await?;

        let gateway_settings = &mut settings.gateway;
        gateway_settings.listen_addr = SocketAddr::new(settings.host, settings.http_port);
        gateway_settings.auth.url = url_of(auth.local_addr());
        gateway_settings.books.url = url_of(books.local_addr());
        let gateway =
            gateway::Application::build_with_revocations(settings.gateway, Checker::Memory(store))
                .await?;

        Ok(Self {
            auth,
            books,
            gateway,
        })
    }

    pub fn addresses(&self) -> Addresses {
        Addresses {
            http: self.gateway.local_addr(),
            auth: self.auth.local_addr(),
            books: self.books.local_addr(),
        }
    }

    /// Serves until `shutdown`; if one service fails, the others are stopped too.
    ///
    /// # Errors
    /// The first service failure.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let (gateway, books, auth) = tokio::join!(
            stop_all_on_error(self.gateway.run_until_stopped(shutdown.clone()), &shutdown),
            stop_all_on_error(self.books.run_until_stopped(shutdown.clone()), &shutdown),
            stop_all_on_error(self.auth.run_until_stopped(shutdown.clone()), &shutdown),
        );
        gateway.and(books).and(auth)
    }
}

async fn stop_all_on_error(
    service: impl Future<Output = anyhow::Result<()>>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let outcome = service.await;
    if outcome.is_err() {
        shutdown.cancel();
    }
    outcome
}

/// The URL a local client uses for `addr` (a wildcard bind is reached over loopback).
fn url_of(addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    format!("http://{}", SocketAddr::new(host, addr.port()))
}
