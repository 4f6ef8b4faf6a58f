//! The whole bookstore in one process, for trying it out and for local development:
//! auth-service, books-service and the gateway on fixed local ports, SQLite files and a
//! signing key in a data folder (created on the first run, reused after), and one in-process
//! revocation store shared by the three. The services call each other through memory, not
//! over loopback TCP, on the same servers (services, layers, metrics, spans) that also listen
//! on their gRPC ports for grpcurl and other callers.
//!
//! Production runs the three services as separate binaries against PostgreSQL and Redis.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use auth_service::keys::{KeyKind, write_new_key};
use gateway::upstream::InProcessUpstreams;
use revocation::{Checker, MemoryStore, Revocations};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

/// Where the stack keeps its state and listens; everything else comes from each service's
/// own settings (`AUTH__…`, `BOOKS__…`, `GATEWAY__…`).
#[derive(Debug, Clone)]
pub struct StackSettings {
    pub data_dir: PathBuf,
    pub host: IpAddr,
    pub ports: Ports,
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
    #[error("{}: {source}; choose another port with {} (0 picks a free one)", port.service(), port.setting())]
    PortTaken {
        port: Port,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StackError {
    fn port_taken(port: Port, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::PortTaken {
            port,
            source: Box::new(source),
        }
    }
}

/// The ports the stack listens on: the three services', and the management listener
/// (`/metrics`, `/healthz`, `/readyz`) of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Http,
    Auth,
    Books,
    GatewayManagement,
    AuthManagement,
    BooksManagement,
}

/// The ports chosen on the command line; `None` takes the port's default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ports {
    pub http: Option<u16>,
    pub auth: Option<u16>,
    pub books: Option<u16>,
    pub gateway_management: Option<u16>,
    pub auth_management: Option<u16>,
    pub books_management: Option<u16>,
}

impl Ports {
    fn chosen(&self, port: Port) -> Option<u16> {
        match port {
            Port::Http => self.http,
            Port::Auth => self.auth,
            Port::Books => self.books,
            Port::GatewayManagement => self.gateway_management,
            Port::AuthManagement => self.auth_management,
            Port::BooksManagement => self.books_management,
        }
    }
}

impl Port {
    /// Below Linux's ephemeral range (32768–60999, where the kernel places client sockets),
    /// so that the connections of a load test on this host, left in TIME_WAIT for a minute
    /// after they close, never hold one of them.
    pub const fn default_number(self) -> u16 {
        match self {
            Self::Http => 8080,
            Self::Auth => 8081,
            Self::Books => 8082,
            Self::GatewayManagement => 9464,
            Self::AuthManagement => 9465,
            Self::BooksManagement => 9466,
        }
    }

    fn service(self) -> &'static str {
        match self {
            Self::Http | Self::GatewayManagement => "gateway",
            Self::Auth | Self::AuthManagement => "auth-service",
            Self::Books | Self::BooksManagement => "books-service",
        }
    }

    /// The launcher's option and environment variable for this port.
    fn setting(self) -> &'static str {
        match self {
            Self::Http => "--http-port or BOOKSTORE_HTTP_PORT",
            Self::Auth => "--auth-port or BOOKSTORE_AUTH_PORT",
            Self::Books => "--books-port or BOOKSTORE_BOOKS_PORT",
            Self::GatewayManagement => {
                "--gateway-management-port or BOOKSTORE_GATEWAY_MANAGEMENT_PORT"
            }
            Self::AuthManagement => "--auth-management-port or BOOKSTORE_AUTH_MANAGEMENT_PORT",
            Self::BooksManagement => "--books-management-port or BOOKSTORE_BOOKS_MANAGEMENT_PORT",
        }
    }
}

/// Where each part of a running stack listens.
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    pub http: SocketAddr,
    pub auth: SocketAddr,
    pub books: SocketAddr,
    /// The management listeners: gateway, auth-service, books-service.
    pub management: [SocketAddr; 3],
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

impl StackSettings {
    /// Creates the data folder and the signing key when missing, and points each service at
    /// its SQLite file in the folder (unless its `database.url` is set) and at the key.
    fn prepare_data_dir(&mut self) -> Result<(), StackError> {
        let data_dir = self.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| StackError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let key = signing_key_path(&data_dir);
        if !key.exists() {
            let created = write_new_key(&key, KeyKind::Ed25519)?;
            tracing::info!(kid = created.kid(), path = %key.display(), "signing key created");
        }
        let sqlite =
            |name: &str| SecretString::from(format!("sqlite://{}", data_dir.join(name).display()));
        self.auth
            .database
            .url
            .get_or_insert_with(|| sqlite("auth.db"));
        self.auth.tokens.signing_key_file.get_or_insert(key);
        self.books
            .database
            .url
            .get_or_insert_with(|| sqlite("books.db"));
        Ok(())
    }
}

/// Creates an administrator in the stack's auth database, whether the stack is running or not
/// (SQLite lets a second process write beside it): `bookstore create-admin`.
///
/// # Errors
/// Invalid settings, an unusable data folder, or the registration's own error.
pub async fn create_admin(
    mut settings: StackSettings,
    registration: auth_service::accounts::Registration,
) -> Result<auth_service::db::users::User, Box<dyn std::error::Error + Send + Sync>> {
    settings.validate()?;
    settings.prepare_data_dir()?;
    auth_service::startup::create_admin(&settings.auth, registration).await
}

impl Stack {
    /// Creates the data folder and the signing key when missing, then builds the services
    /// around one shared in-process revocation store, each calling the others in this process
    /// without TCP. Redis settings are ignored: in one process there is nothing to share it
    /// with.
    ///
    /// # Errors
    /// Invalid settings, an unusable data folder or a service that cannot start (a port
    /// already taken is named with the option that changes it).
    pub async fn build(mut settings: StackSettings) -> Result<Self, StackError> {
        settings.validate()?;
        settings.prepare_data_dir()?;
        let store = Arc::new(MemoryStore::default());
        // Rate limits included: nothing else shares them.
        settings.gateway.redis.url = None;

        let (host, ports) = (settings.host, settings.ports);
        let at = |port| listen_addr(host, port, ports.chosen(port));
        settings.auth.listen_addr = at(Port::Auth);
        settings.auth.management.listen_addr = at(Port::AuthManagement);
        let auth = auth_service::Application::build_with_store(
            settings.auth,
            Revocations::Memory(Arc::clone(&store)),
        )
        .await
        .map_err(|error| match error {
            auth_service::StartupError::Bind(_) => StackError::port_taken(Port::Auth, error),
            auth_service::StartupError::Management(_) => {
                StackError::port_taken(Port::AuthManagement, error)
            }
            other => other.into(),
        })?;

        settings.books.listen_addr = at(Port::Books);
        settings.books.management.listen_addr = at(Port::BooksManagement);
        settings.books.auth.url = url_of(auth.local_addr());
        let books = books_service::Application::build_with(
            settings.books,
            Checker::Memory(Arc::clone(&store)),
            Some(auth.in_process()),
        )
        .await
        .map_err(|error| match error {
            books_service::StartupError::Bind(_) => StackError::port_taken(Port::Books, error),
            books_service::StartupError::Management(_) => {
                StackError::port_taken(Port::BooksManagement, error)
            }
            other => other.into(),
        })?;

        let gateway_settings = &mut settings.gateway;
        gateway_settings.listen_addr = at(Port::Http);
        gateway_settings.management.listen_addr = at(Port::GatewayManagement);
        gateway_settings.auth.url = url_of(auth.local_addr());
        gateway_settings.books.url = url_of(books.local_addr());
        let in_process = InProcessUpstreams {
            auth: Some(auth.in_process()),
            books: Some(books.in_process()),
        };
        let gateway =
            gateway::Application::build_with(settings.gateway, Checker::Memory(store), in_process)
                .await
                .map_err(|error| match error {
                    gateway::StartupError::Bind { .. } => StackError::port_taken(Port::Http, error),
                    gateway::StartupError::Management(_) => {
                        StackError::port_taken(Port::GatewayManagement, error)
                    }
                    other => other.into(),
                })?;

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
            management: [
                self.gateway.management_addr(),
                self.auth.management_addr(),
                self.books.management_addr(),
            ],
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

/// Where `port` listens: the port chosen, or its default, or, when the default is held only by
/// connections that are closing (TIME_WAIT: bound, but nothing accepts there), any free port.
/// A port something listens on counts as taken: the service then fails, naming the setting.
fn listen_addr(host: IpAddr, port: Port, chosen: Option<u16>) -> SocketAddr {
    let preferred = SocketAddr::new(host, chosen.unwrap_or(port.default_number()));
    if chosen.is_some() {
        return preferred;
    }
    match std::net::TcpListener::bind(preferred) {
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse && !accepts(preferred) => {
            tracing::warn!(
                port = preferred.port(),
                "{} port held by closing connections (TIME_WAIT); listening on a free port \
                 instead (choose one with {})",
                port.service(),
                port.setting()
            );
            SocketAddr::new(host, 0)
        }
        _ => preferred,
    }
}

/// Whether something accepts connections at `addr` (a wildcard bind is reached over loopback).
fn accepts(addr: SocketAddr) -> bool {
    let target = SocketAddr::new(loopback_for(addr.ip()), addr.port());
    std::net::TcpStream::connect_timeout(&target, std::time::Duration::from_millis(500)).is_ok()
}

fn loopback_for(ip: IpAddr) -> IpAddr {
    if ip.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        ip
    }
}

/// The URL a local client uses for `addr` (a wildcard bind is reached over loopback). The
/// services here reach each other through memory, and name the server they call by it.
fn url_of(addr: SocketAddr) -> String {
    format!(
        "http://{}",
        SocketAddr::new(loopback_for(addr.ip()), addr.port())
    )
}
