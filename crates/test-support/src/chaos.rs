use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A TCP proxy on `127.0.0.1:0` in front of a real server (Redis, PostgreSQL) whose "network"
/// a test can cut and restore, to exercise outages without mocks.
pub struct ChaosProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

struct State {
    up: bool,
    // Cancelled by `cut`, ending every connection opened before it.
    generation: CancellationToken,
}

impl ChaosProxy {
    /// Starts forwarding to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("cannot bind the chaos proxy");
        let addr = listener.local_addr().expect("proxy has no address");
        let state = Arc::new(Mutex::new(State {
            up: true,
            generation: CancellationToken::new(),
        }));
        let task = tokio::spawn(accept_loop(listener, target, Arc::clone(&state)));
        Self { addr, state, task }
    }

    /// Where clients should connect instead of the real server.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection and refuses new ones until [`restore`](Self::restore).
    pub fn cut(&self) {
        let mut state = self.state.lock().unwrap();
        state.up = false;
        state.generation.cancel();
        state.generation = CancellationToken::new();
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.state.lock().unwrap().up = true;
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, state: Arc<Mutex<State>>) {
    while let Ok((mut client, _)) = listener.accept().await {
        let generation = {
            let state = state.lock().unwrap();
            state.up.then(|| state.generation.clone())
        };
        // Refused while cut: the accepted socket is closed at once.
        let Some(generation) = generation else {
            continue;
        };
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(target).await else {
                return;
            };
            tokio::select! {
                _ = generation.cancelled() => {}
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
            }
        });
    }
}
