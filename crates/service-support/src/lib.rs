//! Start-up plumbing that every bookstore binary needs in the same form: layered settings,
//! tracing, the shutdown signal and running blocking work off the async threads.
//!
//! It holds no service logic and no settings of its own beyond telemetry: each service owns its
//! `Settings` struct and documents its keys.

mod blocking;
mod settings;
mod shutdown;
mod telemetry;

pub use blocking::spawn_blocking_with_tracing;
pub use settings::{SettingsError, load_settings, load_settings_from_map};
pub use shutdown::shutdown_signal;
pub use telemetry::{LogFormat, TelemetrySettings, init_telemetry};
