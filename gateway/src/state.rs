//! What every request works with.

use std::sync::Arc;

use token_verifier::Authenticator;

use crate::config::ConsoleSettings;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::upstream::Upstreams;

pub struct AppState {
    pub authenticator: Authenticator,
    pub upstreams: Upstreams,
    pub rate_limiter: RateLimiter,
    pub metrics: Arc<Metrics>,
    pub revocation_fail_open: bool,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    pub trust_forwarded_for: bool,
    pub console: ConsoleSettings,
}

impl AppState {
    /// Converts an upstream answer.
    ///
    /// # Errors
    /// The status mapped to its HTTP problem.
    pub fn answer<T>(
        &self,
        service: &'static str,
        result: Result<tonic::Response<T>, tonic::Status>,
    ) -> Result<T, crate::error::ApiError> {
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.refusal(service, status))
    }

    /// An upstream's refusal as the gateway's error, logged when the failure is the
    /// upstream's (every call is counted by its code in `rpc_client_call_duration_seconds`).
    pub fn refusal(&self, service: &'static str, status: tonic::Status) -> crate::error::ApiError {
        use tonic::Code;
        if matches!(
            status.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Internal
                | Code::Unknown
                | Code::Unimplemented
                | Code::DataLoss
                | Code::Cancelled
        ) {
            tracing::warn!(service, code = ?status.code(), message = status.message(), "upstream call failed");
        }
        status.into()
    }
}
