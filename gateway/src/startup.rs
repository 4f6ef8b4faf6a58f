//! Building and running the gateway: settings, upstream channels, auth-service's keys, the
//! revocation store, rate limits and the listener in [`Application::build`]; the actix-web
//! app (routes, documentation, middleware, error handlers) in [`app`].

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::error::QueryPayloadError;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, http::Method, web};
use revocation::Checker;
use service_support::grpc;
use token_verifier::{Authenticator, RemoteKeys, Verifier};
use tokio_util::sync::CancellationToken;
use tower_layer::Layer;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use observability::management::{ManagementBindError, ManagementListener};
use observability::serve_management;

use crate::config::{CorsSettings, Settings};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::routes::{self, ApiDoc};
use crate::state::AppState;
use crate::unmatched::{RouteTable, unmatched};
use crate::upstream::{InProcessUpstreams, Upstreams};
use crate::{console, metrics, request_id};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration: {0}")]
    Settings(String),
    #[error("redis: {0}")]
    Redis(#[from] revocation::StoreError),
    #[error("upstream URL: {0}")]
    Upstream(#[from] tonic::transport::Error),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Management(#[from] ManagementBindError),
}

/// A built gateway, bound to its addresses and ready to serve.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    management: ManagementListener,
    state: Arc<AppState>,
    settings: Settings,
}

impl Application {
    /// Builds the gateway with the revocation check its settings name.
    ///
    /// # Errors
    /// Any start-up failure, with a message naming what to fix.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let revocations = Checker::from_settings(&settings.redis, &settings.revocation)?;
        Self::build_with(settings, revocations, InProcessUpstreams::default()).await
    }

    /// Builds the gateway around a given revocation check, so that services sharing a process
    /// can share one in-process store, and reaches the upstreams `in_process` names through
    /// memory rather than over TCP at their URLs.
    ///
    /// # Errors
    /// Any start-up failure, with a message naming what to fix.
    pub async fn build_with(
        settings: Settings,
        revocations: Checker,
        in_process: InProcessUpstreams,
    ) -> Result<Self, StartupError> {
        settings.validate().map_err(StartupError::Settings)?;
        let auth_channel = grpc::channel(
            &settings.auth.url,
            Duration::from_millis(settings.auth.timeout_ms),
            in_process.auth.as_ref(),
        )?;
        let books_channel = grpc::channel(
            &settings.books.url,
            Duration::from_millis(settings.books.timeout_ms),
            in_process.books.as_ref(),
        )?;
        let metrics = Arc::new(Metrics::new()?);
        let keys = Arc::new(RemoteKeys::new(
            metrics.calls.layer().layer(auth_channel.clone()),
            Duration::from_millis(settings.auth.jwks_min_refetch_ms),
        ));
        let rate_limiter = RateLimiter::new(
            settings.redis.connection()?,
            &settings.redis.key_prefix,
            settings.redis.timeout(),
            settings.auth_rate_limit.clone(),
        );
        let authenticator = Authenticator::new(keys, Verifier::new(&settings.tokens), revocations);
        authenticator.register_metrics(metrics.registry())?;
        let state = Arc::new(AppState {
            body_limit: settings.body_limit_bytes,
            authenticator,
            upstreams: Upstreams::new(auth_channel, books_channel, &metrics.calls),
            rate_limiter,
            metrics,
            revocation_fail_open: settings.revocation_fail_open,
            trust_forwarded_for: settings.trust_forwarded_for,
            console: settings.console.clone(),
        });
        let bind_error = |source| StartupError::Bind {
            addr: settings.listen_addr,
            source,
        };
        let listener = TcpListener::bind(settings.listen_addr).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let management = ManagementListener::bind(&settings.management).await?;
        Ok(Self {
            listener,
            addr,
            management,
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

    /// Serves until `shutdown` is cancelled, then lets in-flight requests finish for at most
    /// the configured grace period.
    ///
    /// # Errors
    /// The server failed.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let state = Arc::clone(&self.state);
        let key_refresh = Duration::from_secs(self.settings.auth.jwks_refresh_secs);
        let upkeep_shutdown = shutdown.clone();
        let upkeep = tokio::spawn(async move {
            state
                .authenticator
                .keep_current(key_refresh, upkeep_shutdown)
                .await;
        });
        let ready_state = Arc::clone(&self.state);
        let management_addr = self.management.local_addr();
        let management = tokio::spawn(serve_management(
            self.management,
            self.state.metrics.registry().clone(),
            move || {
                let state = Arc::clone(&ready_state);
                async move { routes::health::readiness(&state).await.status == "ready" }
            },
            shutdown.clone(),
        ));
        tracing::info!(addr = %self.addr, management = %management_addr, "gateway listening");
        serve(
            self.listener,
            Arc::clone(&self.state),
            &self.settings,
            shutdown,
        )?
        .await?;
        upkeep.abort();
        management.abort();
        tracing::info!("gateway stopped");
        Ok(())
    }
}

/// The HTTP server, ready to be awaited. Built outside any `async` block: the builder holds
/// each worker's (non-`Send`) app factory, which must not live across an await.
fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    settings: &Settings,
    shutdown: CancellationToken,
) -> std::io::Result<actix_web::dev::Server> {
    let cors = settings.cors.clone();
    let mut server = HttpServer::new(move || app(Arc::clone(&state), cors.clone()))
        .listen(listener)?
        .shutdown_signal(shutdown.cancelled_owned())
        .shutdown_timeout(settings.shutdown_grace_secs);
    if settings.workers > 0 {
        server = server.workers(settings.workers);
    }
    Ok(server.run())
}

/// The actix-web application of one worker.
pub fn app(
    state: Arc<AppState>,
    cors: CorsSettings,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let metrics = web::Data::new(Arc::clone(&state.metrics));
    let (app, openapi) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .app_data(web::Data::new(state))
        .app_data(metrics)
        .app_data(web::QueryConfig::default().error_handler(|error, _| query_error(&error).into()))
        .app_data(
            web::PathConfig::default()
                .error_handler(|_, _| ApiError::NotFound("no such resource".to_owned()).into()),
        )
        .configure(routes::configure)
        .split_for_parts();
    let routes = web::Data::new(RouteTable::from_openapi(&openapi));
    app.app_data(routes)
        .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi))
        .configure(console::configure)
        .default_service(web::to(unmatched))
        .wrap(Condition::new(
            !cors.allowed_origins.is_empty(),
            cors_layer(&cors),
        ))
        .wrap(from_fn(metrics::middleware))
        .wrap(from_fn(request_id::middleware))
}

fn query_error(error: &QueryPayloadError) -> ApiError {
    ApiError::Validation {
        detail: format!("invalid query parameters: {error}"),
        errors: Default::default(),
    }
}

fn cors_layer(settings: &CorsSettings) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allowed_headers([
            "authorization",
            "content-type",
            "if-match",
            "x-request-id",
            "x-access-token",
        ])
        .expose_headers([
            "etag",
            "location",
            "x-request-id",
            "retry-after",
            "www-authenticate",
        ])
        .max_age(settings.max_age_secs);
    for origin in &settings.allowed_origins {
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors
}
