//! Building and running books-service: settings, database and migrations, the connection to
//! auth-service and its keys, the revocation store and the listener, all in
//! [`Application::build`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use observability::management::{ManagementBindError, ManagementListener};
use observability::{CallMetrics, Registry, serve_management};
use proto::books::v1::books_service_server::BooksServiceServer;
use revocation::{Checker, RevocationCheck};
use service_support::grpc::{self, InProcessConnector, InProcessListener};
use token_verifier::{Authenticator, RemoteKeys, Verifier};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::transport::Server;
use tower_layer::Layer;

use crate::config::Settings;
use crate::db;
use crate::grpc::BooksApi;
use crate::state::AppState;

/// The gRPC name of the service, for health and reflection.
const SERVICE_NAME: &str = <BooksServiceServer<BooksApi> as NamedService>::NAME;

/// How often readiness (database reachable, keys loaded) is re-checked; short, so the service
/// turns SERVING soon after auth-service's keys arrive.
const HEALTH_PROBE_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration: {0}")]
    Settings(String),
    #[error("database: {0}")]
    Database(Box<dyn std::error::Error + Send + Sync>),
    #[error("redis: {0}")]
    Redis(#[from] revocation::StoreError),
    #[error("auth.url: {0}")]
    AuthUrl(#[from] tonic::transport::Error),
    #[error(transparent)]
    Bind(#[from] grpc::BindError),
    #[error(transparent)]
    Management(#[from] ManagementBindError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// A built books-service, bound to its addresses and ready to serve.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    /// Served beside `listener`, for the services that share this process.
    in_process: InProcessListener,
    management: ManagementListener,
    registry: Registry,
    calls: CallMetrics,
    state: Arc<AppState>,
    settings: Settings,
}

impl Application {
    /// Builds the service with the revocation check its settings name.
    ///
    /// # Errors
    /// Any start-up failure, with a message naming what to fix.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let revocations = Checker::from_settings(&settings.redis, &settings.revocation)?;
        Self::build_with(settings, revocations, None).await
    }

    /// Builds the service around a given revocation check, so that services sharing a process
    /// can share one in-process store, and, with `auth`, calls auth-service in this process
    /// through it rather than over TCP at `auth.url`.
    ///
    /// # Errors
    /// Any start-up failure, with a message naming what to fix.
    pub async fn build_with(
        settings: Settings,
        revocations: Checker,
        auth: Option<InProcessConnector>,
    ) -> Result<Self, StartupError> {
        settings.validate().map_err(StartupError::Settings)?;
        let registry = Registry::new();
        let database = db::connect(&settings.database)
            .await
            .map_err(StartupError::Database)?
            .with_metrics(&registry, "books")?;
        let calls = CallMetrics::server(&registry, "books-service")?;
        let timeout = Duration::from_millis(settings.auth.timeout_ms);
        let channel = grpc::channel(&settings.auth.url, timeout, auth.as_ref())?;
        let keys = Arc::new(RemoteKeys::new(
            CallMetrics::client(&registry, "books-service")?
                .layer()
                .layer(channel),
            Duration::from_millis(settings.auth.jwks_min_refetch_ms),
        ));
        let auth = Authenticator::new(keys, Verifier::new(&settings.tokens), revocations);
        auth.register_metrics(&registry)?;
        let state = Arc::new(AppState { db: database, auth });
        let (listener, addr) = grpc::bind(settings.listen_addr).await?;
        let management = ManagementListener::bind(&settings.management).await?;
        Ok(Self {
            listener,
            addr,
            in_process: InProcessListener::default(),
            management,
            registry,
            calls,
            state,
            settings,
        })
    }

    /// The bound address (the real port when the settings said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub fn management_addr(&self) -> SocketAddr {
        self.management.local_addr()
    }

    /// How a client in this process reaches the service without TCP: the same server, its
    /// services and layers, as at [`Self::local_addr`].
    pub fn in_process(&self) -> InProcessConnector {
        self.in_process.connector()
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight calls finish for at most the
    /// configured grace period.
    ///
    /// # Errors
    /// The server failed.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let (health, health_service) = tonic_health::server::health_reporter();
        let state = Arc::clone(&self.state);
        let ready = move || {
            let state = Arc::clone(&state);
            async move {
                state.auth.keys().age().is_some()
                    && state.auth.revocations().ping().await.is_ok()
                    && state.db.ping().await
            }
        };
        let state = Arc::clone(&self.state);
        let key_refresh = Duration::from_secs(self.settings.auth.jwks_refresh_secs);
        let upkeep_shutdown = shutdown.clone();
        let serving = Arc::new(AtomicBool::new(false));
        let answered = Arc::clone(&serving);
        let management_addr = self.management.local_addr();
        let management = serve_management(
            self.management,
            self.registry,
            move || {
                let answered = Arc::clone(&answered);
                async move { answered.load(Ordering::Acquire) }
            },
            shutdown.clone(),
        );
        let background = [
            grpc::start_health_reports(
                health,
                serving,
                SERVICE_NAME,
                ready,
                HEALTH_PROBE_INTERVAL,
                shutdown.clone(),
            )
            .await,
            tokio::spawn(async move {
                state.auth.keep_current(key_refresh, upkeep_shutdown).await;
            }),
            tokio::spawn(async move {
                if let Err(error) = management.await {
                    tracing::error!(%error, "the management listener failed");
                }
            }),
        ];

        tracing::info!(addr = %self.addr, management = %management_addr, "books-service listening");
        let server = Server::builder()
            .layer(self.calls.layer())
            .add_service(health_service)
            .add_service(grpc::reflection(&[SERVICE_NAME]).build_v1()?)
            .add_service(grpc::reflection(&[SERVICE_NAME]).build_v1alpha()?)
            .add_service(BooksServiceServer::new(BooksApi::new(Arc::clone(
                &self.state,
            ))))
            .serve_with_incoming_shutdown(
                grpc::incoming(self.listener, self.in_process),
                shutdown.clone().cancelled_owned(),
            );
        grpc::serve_with_grace(server, shutdown, self.settings.shutdown_grace()).await?;
        for task in background {
            task.abort();
        }
        tracing::info!("books-service stopped");
        Ok(())
    }
}
