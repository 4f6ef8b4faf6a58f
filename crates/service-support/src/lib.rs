//! Plumbing that every bookstore service needs in the same form: layered settings, tracing, the
//! shutdown signal, running blocking work off the async threads, and serving gRPC (request
//! spans, graceful shutdown, health reporting).
//!
//! It holds no service logic and no settings of its own beyond telemetry: each service owns its
//! `Settings` struct and documents its keys.

mod binary;
mod blocking;
pub mod grpc;
mod settings;
mod shutdown;
mod telemetry;

pub use binary::{BoxError, ServiceSettings, fail, run_binary};
pub use blocking::spawn_blocking_with_tracing;
pub use settings::{SettingsError, check_ranges, load_settings, load_settings_from_map};
pub use shutdown::{cancel_on_shutdown_signal, shutdown_signal};
pub use telemetry::{LogFormat, TelemetrySettings, init_telemetry};
