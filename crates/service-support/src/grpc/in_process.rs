//! Calls between services that share one process, through memory instead of loopback TCP. A
//! client's connector opens an in-memory pipe and hands its far end to the server's accept
//! loop, beside the connections its TCP listener accepts; HTTP/2 runs over the pipe as over a
//! socket, so everything above the connection (layers, metrics, spans, timeouts, graceful
//! shutdown) is what TCP callers get.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::either::Either;
use tonic::transport::Uri;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tower_service::Service;

/// How many bytes each direction of a pipe holds before its writer waits for the reader: a
/// few HTTP/2 frames (16 KiB each), so a page of books crosses in one write. The buffer grows
/// to this only when used.
const PIPE_CAPACITY: usize = 256 * 1024;
/// Connections opened but not accepted yet, as a TCP listener's backlog holds them (a client
/// channel opens one connection and reopens it only when it breaks).
const BACKLOG: usize = 64;

/// The connections clients in this process open to a server, for [`super::incoming`].
pub struct InProcessListener {
    sender: mpsc::Sender<DuplexStream>,
    receiver: mpsc::Receiver<DuplexStream>,
}

impl Default for InProcessListener {
    fn default() -> Self {
        let (sender, receiver) = mpsc::channel(BACKLOG);
        Self { sender, receiver }
    }
}

impl InProcessListener {
    /// What a client in this process connects through (see [`super::channel`]).
    pub fn connector(&self) -> InProcessConnector {
        InProcessConnector {
            sender: self.sender.clone(),
        }
    }

    /// The accepted connections; they end once every connector is gone.
    pub(super) fn into_receiver(self) -> mpsc::Receiver<DuplexStream> {
        self.receiver
    }
}

/// Opens connections to one server in this process. Once the server has stopped (its accept
/// loop dropped), a connection is refused, as a closed port refuses one.
#[derive(Clone, Debug)]
pub struct InProcessConnector {
    sender: mpsc::Sender<DuplexStream>,
}

impl Service<Uri> for InProcessConnector {
    type Response = TokioIo<DuplexStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let sender = self.sender.clone();
        Box::pin(async move {
            let (client, server) = tokio::io::duplex(PIPE_CAPACITY);
            sender.send(server).await.map_err(|_| {
                io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "the in-process server has stopped",
                )
            })?;
            Ok(TokioIo::new(client))
        })
    }
}

/// A connection a server accepted: over TCP, or from a client in this process.
pub struct Connection(Either<TcpStream, DuplexStream>);

impl Connection {
    pub(super) fn tcp(stream: TcpStream) -> Self {
        Self(Either::Left(stream))
    }

    pub(super) fn in_process(stream: DuplexStream) -> Self {
        Self(Either::Right(stream))
    }
}

impl Connected for Connection {
    /// TCP's, so that `Request::remote_addr` answers for TCP callers as before; a caller in
    /// this process has no address.
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        match &self.0 {
            Either::Left(tcp) => tcp.connect_info(),
            Either::Right(_) => TcpConnectInfo {
                local_addr: None,
                remote_addr: None,
            },
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
