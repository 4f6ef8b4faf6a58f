use tokio::task::JoinHandle;

/// Runs `f` on tokio's blocking pool inside the caller's tracing span, so database queries and
/// password hashing never stall an async worker thread and still log with the request's fields.
pub fn spawn_blocking_with_tracing<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
}
