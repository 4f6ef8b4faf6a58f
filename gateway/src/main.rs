//! The gateway binary: serve HTTP until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gateway::{Application, Settings};
use service_support::{cancel_on_shutdown_signal, run_binary};

#[derive(Parser)]
#[command(name = "gateway", version, about = "The bookstore's public HTTP API")]
struct Cli {
    /// TOML settings file; GATEWAY__* environment variables override it.
    #[arg(long, env = "GATEWAY_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    run_binary(
        "gateway",
        cli.config.as_deref(),
        |settings: Settings| async {
            let app = Application::build(settings).await?;
            app.run_until_stopped(cancel_on_shutdown_signal()).await?;
            Ok(())
        },
    )
}
