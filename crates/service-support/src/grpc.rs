use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

mod in_process;

pub use in_process::{Connection, InProcessConnector, InProcessListener};

/// A listener on `addr` (port 0 picks a free port) and the address it got.
///
/// # Errors
/// The address is taken or not allowed.
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), BindError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| BindError { addr, source })?;
    Ok((listener, bound))
}

/// The connection stream a tonic server accepts: from `listener`, with `TCP_NODELAY` (without
/// it, small responses wait for the peer's delayed ACK, ~40 ms per call on Linux), and from
/// the clients in this process that connect through `in_process`. One server serves both, so
/// both get the same services and layers, and its graceful shutdown drains both.
pub fn incoming(
    listener: TcpListener,
    in_process: InProcessListener,
) -> impl Stream<Item = std::io::Result<Connection>> {
    let tcp = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .map(|accepted| accepted.map(Connection::tcp));
    let in_process = ReceiverStream::new(in_process.into_receiver())
        .map(|pipe| Ok(Connection::in_process(pipe)));
    tcp.merge(in_process)
}

/// A channel to the server at `url`, connected on its first call, with `timeout` for
/// connecting and for each call: over TCP (with `TCP_NODELAY`), or through `in_process` when
/// the server shares this process (`url` then only names it, in each call's `:authority`).
///
/// # Errors
/// A malformed URL.
pub fn channel(
    url: &str,
    timeout: Duration,
    in_process: Option<&InProcessConnector>,
) -> Result<Channel, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(timeout)
        .timeout(timeout)
        .tcp_nodelay(true);
    Ok(match in_process {
        Some(connector) => endpoint.connect_with_connector_lazy(connector.clone()),
        None => endpoint.connect_lazy(),
    })
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// Server reflection for `services` (full gRPC names) and the health service, so `grpcurl`
/// works without `.proto` files and each server lists only what it serves.
pub fn reflection(services: &[&str]) -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health");
    services
        .iter()
        .fold(builder, |builder, name| builder.with_service_name(*name))
}

/// `Ok` when the gRPC server at `addr` reports `service` as SERVING: what `<binary> probe`
/// checks for container health checks. A wildcard address is probed over loopback.
///
/// # Errors
/// Why not, as the one line the probe prints.
pub async fn probe(addr: SocketAddr, service: &str) -> Result<(), crate::BoxError> {
    let host = if addr.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        addr.ip()
    };
    let target = SocketAddr::new(host, addr.port());
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{target}"))?
        .timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await?;
    let request = tonic_health::pb::HealthCheckRequest {
        service: service.to_owned(),
    };
    let status = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(request)
        .await?
        .into_inner()
        .status();
    if status == tonic_health::pb::health_check_response::ServingStatus::Serving {
        Ok(())
    } else {
        Err(format!("{service} at {target} is {}", status.as_str_name()).into())
    }
}

/// Drives `server` (built with `serve_with_incoming_shutdown(…, shutdown)`) to its end: after
/// `shutdown` fires, in-flight calls get `grace` to finish before they are dropped.
///
/// # Errors
/// The server's own error.
pub async fn serve_with_grace<E>(
    server: impl Future<Output = Result<(), E>>,
    shutdown: CancellationToken,
    grace: Duration,
) -> Result<(), E> {
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!("shutdown grace period over; dropping remaining calls");
            Ok(())
        }
    }
}

/// Reports the health of `service` as `probe` says (SERVING while it holds, NOT_SERVING
/// otherwise), in the gRPC health service and in `ready` (what the management listener's
/// `/readyz` answers): once before returning, so the service never starts without a status,
/// then every `interval` from a spawned task until `shutdown`.
pub async fn start_health_reports<F, Fut>(
    reporter: HealthReporter,
    ready: Arc<AtomicBool>,
    service: &'static str,
    probe: F,
    interval: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let mut healthy = probe().await;
    set_health(&reporter, service, healthy).await;
    ready.store(healthy, Ordering::Release);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            let now = probe().await;
            if now != healthy {
                healthy = now;
                tracing::info!(service, healthy, "health changed");
                set_health(&reporter, service, healthy).await;
                ready.store(healthy, Ordering::Release);
            }
        }
    })
}

async fn set_health(reporter: &HealthReporter, service: &str, healthy: bool) {
    let status = if healthy {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    reporter.set_service_status(service, status).await;
}
