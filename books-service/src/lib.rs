//! books-service: the bookstore's books over gRPC, each owned by a user.
//!
//! Every call is authenticated by the service itself (token signature against auth-service's
//! JWKS, claims, revocation store), so it is safe to call from anywhere in the cluster.
//! Build it with [`Application::build`], serve it with [`Application::run_until_stopped`].
//! The contract is `proto/bookstore/books/v1/books.proto`.

pub mod books;
pub mod caller;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod startup;
pub mod state;

pub use config::Settings;
pub use startup::{Application, StartupError};
