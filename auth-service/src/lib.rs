//! auth-service: users, passwords, sessions and signed tokens for the bookstore, over gRPC.
//!
//! Build it with [`Application::build`], serve it with [`Application::run_until_stopped`].
//! The gRPC contract is `proto/bookstore/auth/v1/auth.proto`; the design is docs/architecture.md.

pub mod accounts;
pub mod caller;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod keys;
pub mod metrics;
pub mod passwords;
pub mod revocation;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod throttle;
pub mod tokens;

pub use config::Settings;
pub use startup::{Application, StartupError};
