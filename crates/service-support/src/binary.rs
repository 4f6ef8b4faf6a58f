use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

use serde::de::DeserializeOwned;

use crate::{TelemetrySettings, init_telemetry, load_settings};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The settings of a service binary: where its environment variables live and where its
/// telemetry settings are.
pub trait ServiceSettings: DeserializeOwned {
    /// `AUTH` for `AUTH__DATABASE__URL`.
    const ENV_PREFIX: &'static str;
    /// Keys whose environment value is a comma-separated list.
    const LIST_KEYS: &'static [&'static str];

    fn telemetry(&self) -> &TelemetrySettings;
}

/// What every service binary's `main` does: load `S` (defaults < the `config` file <
/// environment), start telemetry (its spans reported as `name`'s), run `work` on a
/// multi-threaded tokio runtime, and flush the spans left. Any failure ends the process with
/// one line on stderr, `<name>: <what>`, and exit code 1.
pub fn run_binary<S, F, Fut>(name: &'static str, config: Option<&Path>, work: F) -> ExitCode
where
    S: ServiceSettings,
    F: FnOnce(S) -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    let outcome = (|| -> Result<(), BoxError> {
        let settings: S = load_settings(S::ENV_PREFIX, config, S::LIST_KEYS)?;
        let telemetry = init_telemetry(settings.telemetry(), &[name])?;
        let outcome = tokio::runtime::Runtime::new()?.block_on(work(settings));
        telemetry.shutdown();
        outcome
    })();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(name, &*error),
    }
}

/// Reports `error` as the one line a failed binary prints, and the exit code to return.
pub fn fail(name: &str, error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("{name}: {error}");
    ExitCode::FAILURE
}
