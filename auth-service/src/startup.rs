//! Building and running auth-service: everything fallible happens in [`Application::build`]
//! (settings, database and migrations, keys, listener), so a started service only stops when
//! asked to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use observability::management::{ManagementBindError, ManagementListener};
use observability::{CallMetrics, Registry, serve_management};
use proto::auth::v1::auth_service_server::AuthServiceServer;
use revocation::Revocations;
use service_support::grpc::{self, InProcessConnector, InProcessListener};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::transport::Server;

use crate::config::Settings;
use crate::db;
use crate::domain::PasswordPolicy;
use crate::grpc::AuthApi;
use crate::keys::{KeyError, KeyRing};
use crate::metrics::AuthMetrics;
use crate::passwords::PasswordHasher;
use crate::revocation::Publisher;
use crate::state::AppState;
use crate::tokens::Tokens;

/// The gRPC name of the service, for health and reflection.
const SERVICE_NAME: &str = <AuthServiceServer<AuthApi> as NamedService>::NAME;

/// How often the database is probed for the health service (NOT_SERVING while it is down).
const HEALTH_PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// How often expired outbox rows and stale login counters are deleted.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration: {0}")]
    Settings(String),
    #[error("database: {0}")]
    Database(Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("redis: {0}")]
    Redis(#[from] revocation::StoreError),
    #[error(transparent)]
    Hashing(#[from] crate::passwords::HasherError),
    #[error(transparent)]
    Bind(#[from] grpc::BindError),
    #[error(transparent)]
    Management(#[from] ManagementBindError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// A built auth-service, bound to its addresses and ready to serve.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    /// Served beside `listener`, for the services that share this process.
    in_process: InProcessListener,
    management: ManagementListener,
    registry: Registry,
    calls: CallMetrics,
    state: Arc<AppState>,
    grace: Duration,
}

impl Application {
    /// Builds the service with the revocation store its settings name.
    ///
    /// # Errors
    /// Any start-up failure, with a message naming what to fix.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        // The stream keeps items twice as long as any revocation lives: safe against any clock
        // skew between this host and Redis smaller than that life.
        let retention = 2 * settings.tokens.revocation_ttl();
        let store = Revocations::from_settings(&settings.redis, retention)?;
        Self::build_with_store(settings, store).await
    }

    /// Builds the service around a given revocation store, so that services sharing a process
    /// can share one in-process store.
    ///
    /// # Errors
    /// Any start-up failure, with a message naming what to fix.
    pub async fn build_with_store(
        settings: Settings,
        store: Revocations,
    ) -> Result<Self, StartupError> {
        let registry = Registry::new();
        let state = build_state(&settings, store, &registry).await?;
        let calls = CallMetrics::server(&registry, "auth-service")?;
        // Before serving: a store that starts empty (in process, or a Redis that lost its data)
        // must hold every live revocation before any verifier asks it.
        if let Err(error) = state.publisher.sync().await {
            tracing::warn!(%error, "revocations not published yet; retrying in the background");
        }
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
            grace: settings.shutdown_grace(),
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
        // v1alpha too, for grpcurl versions older than 1.8.8.
        let reflection_v1 = grpc::reflection(&[SERVICE_NAME]).build_v1()?;
        let reflection_v1alpha = grpc::reflection(&[SERVICE_NAME]).build_v1alpha()?;

        let state = Arc::clone(&self.state);
        let database_up = move || {
            let state = Arc::clone(&state);
            async move { state.db.ping().await }
        };
        let ready = Arc::new(AtomicBool::new(false));
        let management_addr = self.management.local_addr();
        let background = [
            grpc::start_health_reports(
                health,
                Arc::clone(&ready),
                SERVICE_NAME,
                database_up,
                HEALTH_PROBE_INTERVAL,
                shutdown.clone(),
            )
            .await,
            tokio::spawn(Arc::clone(&self.state.publisher).run(shutdown.clone())),
            tokio::spawn(housekeeping(Arc::clone(&self.state), shutdown.clone())),
            tokio::spawn(management(
                self.management,
                self.registry,
                ready,
                shutdown.clone(),
            )),
        ];

        tracing::info!(addr = %self.addr, management = %management_addr, "auth-service listening");
        let server = Server::builder()
            .layer(self.calls.layer())
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(AuthServiceServer::new(AuthApi::new(Arc::clone(
                &self.state,
            ))))
            .serve_with_incoming_shutdown(
                grpc::incoming(self.listener, self.in_process),
                shutdown.clone().cancelled_owned(),
            );
        grpc::serve_with_grace(server, shutdown, self.grace).await?;
        for task in background {
            task.abort();
        }
        tracing::info!("auth-service stopped");
        Ok(())
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` (as the health reports say) until `shutdown`.
async fn management(
    listener: ManagementListener,
    registry: Registry,
    ready: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let ready = move || {
        let ready = Arc::clone(&ready);
        async move { ready.load(Ordering::Acquire) }
    };
    if let Err(error) = serve_management(listener, registry, ready, shutdown).await {
        tracing::error!(%error, "the management listener failed");
    }
}

/// Everything the RPCs work with, from validated settings, its metrics in `registry`.
///
/// # Errors
/// Any start-up failure, with a message naming what to fix.
pub async fn build_state(
    settings: &Settings,
    store: Revocations,
    registry: &Registry,
) -> Result<Arc<AppState>, StartupError> {
    settings.validate().map_err(StartupError::Settings)?;
    let keys = KeyRing::load(&settings.tokens)?;
    let database = db::connect(&settings.database)
        .await
        .map_err(StartupError::Database)?
        .with_metrics(registry, "auth")?;
    let metrics = Arc::new(AuthMetrics::register(registry)?);
    let password_settings = settings.passwords.clone();
    let (hashing_registry, hashing_metrics) = (registry.clone(), Arc::clone(&metrics));
    let passwords = tokio::task::spawn_blocking(move || {
        PasswordHasher::new(&password_settings, &hashing_registry, hashing_metrics)
    })
    .await
    .map_err(|error| StartupError::Settings(error.to_string()))??;
    let tokens = Tokens::new(keys, settings.tokens.clone());
    let publisher = Arc::new(Publisher::new(
        database.clone(),
        store,
        settings.revocation.retry_interval(),
        settings.tokens.revocation_ttl(),
        Arc::clone(&metrics),
    ));
    Ok(Arc::new(AppState {
        db: database,
        passwords,
        policy: PasswordPolicy::new(&settings.passwords),
        tokens,
        publisher,
        throttle: settings.login_throttle.clone(),
        metrics,
    }))
}

/// Deletes outbox rows whose tokens have all expired and login counters whose window is over.
async fn housekeeping(state: Arc<AppState>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(HOUSEKEEPING_INTERVAL) => {}
        }
        let window = crate::throttle::longest_window(&state.throttle);
        let outcome = state
            .db
            .run(move |conn| -> Result<_, crate::error::AuthError> {
                let now = chrono::Utc::now().naive_utc();
                let revocations = db::revocations::delete_expired(conn, now)?;
                let floor = now
                    .checked_sub_signed(window)
                    .unwrap_or(chrono::NaiveDateTime::MIN);
                let attempts = db::login_attempts::delete_started_before(conn, floor)?;
                Ok((revocations, attempts))
            })
            .await;
        match outcome {
            Ok((revocations, attempts)) => {
                tracing::debug!(revocations, attempts, "housekeeping done");
            }
            Err(error) => tracing::warn!(%error, "housekeeping failed; will retry"),
        }
    }
}

/// Creates an account with the admin role, without a session: what `auth-service
/// create-admin` does for the first admin.
///
/// # Errors
/// Start-up failures, or the registration's own (taken name, weak password) as one message.
pub async fn create_admin(
    settings: &Settings,
    registration: crate::accounts::Registration,
) -> Result<crate::db::users::User, Box<dyn std::error::Error + Send + Sync>> {
    // Nothing is revoked here, so the store is never read.
    let store = Revocations::Memory(Arc::new(revocation::MemoryStore::default()));
    let state = build_state(settings, store, &Registry::new()).await?;
    let (admin, _) = state
        .register(registration, crate::domain::Roles::admin(), None)
        .await
        .map_err(|error| tonic::Status::from(error).message().to_owned())?;
    Ok(admin)
}
