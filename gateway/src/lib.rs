//! gateway: the bookstore's public HTTP API and its web console for people (README, "The HTTP
//! API" and "The web console"; docs/architecture.md).
//!
//! Every protected request is authenticated here, locally: the access token's signature is
//! checked against auth-service's published keys and its revocation in the shared store, with
//! no call to auth-service. Requests are then answered by calling auth-service or
//! books-service over gRPC with the caller's token and request id. Build it with
//! [`Application::build`], serve it with [`Application::run_until_stopped`].

pub mod config;
pub mod console;
pub mod error;
pub mod extract;
pub mod json_body;
pub mod metrics;
pub mod probe;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod startup;
pub mod state;
pub mod unmatched;
pub mod upstream;

pub use config::Settings;
pub use startup::{Application, StartupError};
