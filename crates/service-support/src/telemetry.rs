use std::io::IsTerminal;

use serde::Deserialize;
use tracing_subscriber::{EnvFilter, fmt};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines; coloured only on a terminal, and never with `NO_COLOR` set.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `telemetry.*` keys, shared by every service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A `tracing` filter such as `info` or `info,auth_service=debug`. `RUST_LOG` wins when set.
    pub log_filter: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_filter: "info".to_owned(),
        }
    }
}

/// Installs the global tracing subscriber. Call once, from `main`.
///
/// # Errors
/// The filter does not parse, or a subscriber is already installed.
pub fn init_telemetry(
    settings: &TelemetrySettings,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.is_empty() => EnvFilter::try_new(from_env)?,
        _ => EnvFilter::try_new(&settings.log_filter)?,
    };
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(colour(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ));
    match settings.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    }
}

/// Whether text logs written where `on_terminal` says may carry colour codes: only for a person
/// at a terminal, and not when they asked for none (`NO_COLOR` set and not empty, as
/// <https://no-color.org> defines it). A file or a pipe gets plain text.
fn colour(on_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    on_terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
    }
}
