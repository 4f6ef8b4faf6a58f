use std::io::IsTerminal;

use observability::traces::{ExportSettings, Traces};
use serde::Deserialize;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt};

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
    /// It also decides which spans are exported.
    pub log_filter: String,
    /// The OTLP/HTTP collector's base URL (`/v1/traces` is appended); unset, the standard
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` decide, and without
    /// either no span is exported.
    pub otlp_endpoint: Option<String>,
    /// The share of new traces exported, 0 to 1; unset, `OTEL_TRACES_SAMPLER` / `_ARG` decide
    /// (default: every trace).
    pub trace_sampling_ratio: Option<f64>,
    /// Whether an incoming request's sampled flag decides for the spans it causes (default true).
    pub trace_parent_based: Option<bool>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_filter: "info".to_owned(),
            otlp_endpoint: None,
            trace_sampling_ratio: None,
            trace_parent_based: None,
        }
    }
}

/// What [`init_telemetry`] started: flush it with [`Telemetry::shutdown`] before exiting, so
/// that the last spans reach the collector.
pub struct Telemetry {
    traces: Option<Traces>,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Some(traces) = self.traces {
            traces.shutdown();
        }
    }
}

/// Installs the global tracing subscriber: logs, and spans exported as the settings and the
/// OpenTelemetry environment variables say, as the work of `services` (the process's own
/// service first). Call once, from `main`, outside any async runtime.
///
/// # Errors
/// The filter does not parse, a trace setting is invalid, or a subscriber is already installed.
pub fn init_telemetry(
    settings: &TelemetrySettings,
    services: &[&'static str],
) -> Result<Telemetry, Box<dyn std::error::Error + Send + Sync>> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.is_empty() => EnvFilter::try_new(from_env)?,
        _ => EnvFilter::try_new(&settings.log_filter)?,
    };
    if let Some(ratio) = settings.trace_sampling_ratio
        && !(0.0..=1.0).contains(&ratio)
    {
        return Err(
            format!("telemetry.trace_sampling_ratio = {ratio} is out of range 0..=1").into(),
        );
    }
    let export = ExportSettings {
        endpoint: settings.otlp_endpoint.as_deref(),
        sampling_ratio: settings.trace_sampling_ratio,
        parent_based: settings.trace_parent_based,
    };
    let traces = Traces::start(&export, services, |name| std::env::var(name).ok())?;

    let ansi = colour(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR"),
    );
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match settings.log_format {
        LogFormat::Text => fmt::layer().with_target(true).with_ansi(ansi).boxed(),
        LogFormat::Json => fmt::layer().json().flatten_event(true).boxed(),
    };
    tracing_subscriber::registry()
        .with(logs)
        .with(traces.as_ref().map(Traces::layer))
        .with(filter)
        .try_init()?;
    Ok(Telemetry { traces })
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
