//! The gateway binary: serve HTTP until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gateway::config::{ENV_PREFIX, LIST_KEYS};
use gateway::{Application, Settings};
use service_support::{cancel_on_shutdown_signal, init_telemetry, load_settings};

#[derive(Parser)]
#[command(name = "gateway", version, about = "The bookstore's public HTTP API")]
struct Cli {
    /// TOML settings file; GATEWAY__* environment variables override it.
    #[arg(long, env = "GATEWAY_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings: Settings = match load_settings(ENV_PREFIX, cli.config.as_deref(), LIST_KEYS) {
        Ok(settings) => settings,
        Err(error) => return fail(&error),
    };
    if let Err(error) = init_telemetry(&settings.telemetry) {
        return fail(&error);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&error),
    };
    match runtime.block_on(serve(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&*error),
    }
}

async fn serve(settings: Settings) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let app = Application::build(settings).await?;
    app.run_until_stopped(cancel_on_shutdown_signal()).await?;
    Ok(())
}

fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("gateway: {error}");
    ExitCode::FAILURE
}
