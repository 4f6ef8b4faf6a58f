//! `gateway probe`: a readiness check for container health checks, which have no HTTP client
//! in a distroless image.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `Ok` when the gateway at `addr` answers `GET /readyz` with 200.
///
/// # Errors
/// What went wrong, for the one line the probe prints.
pub async fn ready(addr: SocketAddr) -> Result<(), service_support::BoxError> {
    let host = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    let target = SocketAddr::new(host, addr.port());
    let exchange = async {
        let mut stream = TcpStream::connect(target).await?;
        stream
            .write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(3), exchange).await??;
    let status_line = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(format!("{target}/readyz answered `{status_line}`").into())
    }
}
