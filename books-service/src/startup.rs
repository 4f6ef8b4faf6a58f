//! Building and running books-service: settings, database and migrations, the connection to
//! auth-service and its keys, the revocation store and the listener, all in
//! [`Application::build`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proto::books::v1::books_service_server::BooksServiceServer;
use revocation::{Checker, RevocationCheck};
use service_support::grpc;
use token_verifier::{Authenticator, RemoteKeys, Verifier};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::transport::{Endpoint, Server};

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
}

/// A built books-service, bound to its address and ready to serve.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
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
        Self::build_with_revocations(settings, revocations).await
    }

    /// Builds the service around a given revocation check, so that services sharing a process
    /// can share one in-process store.
    ///
    /// # Errors
    /// Any start-up failure, with a message naming what to fix.
    pub async fn build_with_revocations(
        settings: Settings,
        revocations: Checker,
    ) -> Result<Self, StartupError> {
        settings.validate().map_err(StartupError::Settings)?;
        let database = db::connect(&settings.database)
            .await
            .map_err(StartupError::Database)?;
        let timeout = Duration::from_millis(settings.auth.timeout_ms);
        let channel = Endpoint::from_shared(settings.auth.url.clone())?
            .connect_timeout(timeout)
            .timeout(timeout)
            .connect_lazy();
        let keys = Arc::new(RemoteKeys::new(
            channel,
            Duration::from_millis(settings.auth.jwks_min_refetch_ms),
        ));
        let auth = Authenticator::new(keys, Verifier::new(&settings.tokens), revocations);
        let state = Arc::new(AppState { db: database, auth });
        let (listener, addr) = grpc::bind(settings.listen_addr).await?;
        Ok(Self {
            listener,
            addr,
            state,
            settings,
        })
    }

    /// The bound address (the real port when the settings said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
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
        let background = [
            grpc::start_health_reports(
                health,
                SERVICE_NAME,
                ready,
                HEALTH_PROBE_INTERVAL,
                shutdown.clone(),
            )
            .await,
            tokio::spawn(async move {
                state.auth.keep_current(key_refresh, upkeep_shutdown).await;
            }),
        ];

        tracing::info!(addr = %self.addr, "books-service listening");
        let server = Server::builder()
            .trace_fn(grpc::request_span)
            .add_service(health_service)
            .add_service(grpc::reflection(&[SERVICE_NAME]).build_v1()?)
            .add_service(grpc::reflection(&[SERVICE_NAME]).build_v1alpha()?)
            .add_service(BooksServiceServer::new(BooksApi::new(Arc::clone(
                &self.state,
            ))))
            .serve_with_incoming_shutdown(
                grpc::incoming(self.listener),
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
