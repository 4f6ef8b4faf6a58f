//! The management listener: `/metrics` (Prometheus text), `/healthz` (the process answers) and
//! `/readyz` (the service can serve: 200, or 503), on an address of its own so that neither
//! metrics nor probes are reachable through the public port.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// `management.*` keys, the same for every service (each has its own default port).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagementSettings {
    /// Where `/metrics`, `/healthz` and `/readyz` are served; port 0 picks a free port.
    pub listen_addr: SocketAddr,
}

impl ManagementSettings {
    /// The defaults of a service whose management port is `port` (9464, the port the
    /// OpenTelemetry Prometheus exporter uses, and the two after it).
    pub fn on_port(port: u16) -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("management.listen_addr: cannot listen on {addr}: {source}")]
pub struct ManagementBindError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// A bound management listener, ready to [`serve_management`].
pub struct ManagementListener {
    listener: TcpListener,
    addr: SocketAddr,
}

impl ManagementListener {
    /// # Errors
    /// The address is taken or not allowed; the message names the setting.
    pub async fn bind(settings: &ManagementSettings) -> Result<Self, ManagementBindError> {
        let addr = settings.listen_addr;
        let error = |source| ManagementBindError { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(error)?;
        let addr = listener.local_addr().map_err(error)?;
        Ok(Self { listener, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Serves the management routes until `shutdown`. `ready` answers `/readyz`.
///
/// # Errors
/// The listener failed.
pub async fn serve_management<F, Fut>(
    listener: ManagementListener,
    registry: Registry,
    ready: F,
    shutdown: CancellationToken,
) -> std::io::Result<()>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let registry = Arc::new(registry);
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let registry = Arc::clone(&registry);
                async move { metrics(&registry) }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready().await {
                        (StatusCode::OK, "ready")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                    }
                }
            }),
        );
    axum::serve(listener.listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

fn metrics(registry: &Registry) -> ([(header::HeaderName, &'static str); 1], Vec<u8>) {
    let mut body = Vec::new();
    // Encoding well-formed metrics into memory cannot fail.
    let _ = TextEncoder::new().encode(&registry.gather(), &mut body);
    ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicBool, Ordering};

    use prometheus::IntCounter;

    use super::*;

    #[tokio::test]
    async fn metrics_health_and_readiness_are_served_on_the_management_port() {
        let registry = Registry::new();
        let counter = crate::register(
            &registry,
            IntCounter::new("things_total", "Things.").unwrap(),
        )
        .unwrap();
        counter.inc();
        let ready = Arc::new(AtomicBool::new(false));
        let listener = ManagementListener::bind(&ManagementSettings::on_port(0))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr());
        let shutdown = CancellationToken::new();
        let flag = Arc::clone(&ready);
        let server = tokio::spawn(serve_management(
            listener,
            registry,
            move || {
                let flag = Arc::clone(&flag);
                async move { flag.load(Ordering::SeqCst) }
            },
            shutdown.clone(),
        ));
        let client = reqwest::Client::new();
        let get = |path: &str| client.get(format!("{base}{path}")).send();

        let metrics = get("/metrics").await.unwrap().text().await.unwrap();
        assert!(metrics.contains("things_total 1"), "{metrics}");
        assert_eq!(get("/healthz").await.unwrap().status(), 200);
        assert_eq!(get("/readyz").await.unwrap().status(), 503);
        ready.store(true, Ordering::SeqCst);
        assert_eq!(get("/readyz").await.unwrap().status(), 200);

        shutdown.cancel();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_taken_address_is_named_with_its_setting() {
        let taken = ManagementListener::bind(&ManagementSettings::on_port(0))
            .await
            .unwrap();
        let settings = ManagementSettings {
            listen_addr: taken.local_addr(),
        };
        let error = ManagementListener::bind(&settings)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.starts_with("management.listen_addr: cannot listen on"),
            "{error}"
        );
    }
}
