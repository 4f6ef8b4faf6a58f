//! The gateway binary: serve HTTP until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gateway::{Application, Settings};
use service_support::{cancel_on_shutdown_signal, run_binary};

#[derive(Parser)]
#[command(name = "gateway", version, about = "The bookstore's public HTTP API")]
struct Cli {
    /// TOML settings file; GATEWAY__* environment variables override it.
    #[arg(long, global = true, env = "GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP until SIGINT or SIGTERM (the default).
    Serve,
    /// Exit 0 if the configured gateway answers /readyz with 200 (for container health checks).
    Probe,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = cli.config.as_deref();
    match cli.command {
        Some(Command::Probe) => run_binary("gateway", config, |settings: Settings| async move {
            gateway::probe::ready(settings.listen_addr).await
        }),
        Some(Command::Serve) | None => run_binary("gateway", config, |settings: Settings| async {
            let app = Application::build(settings).await?;
            app.run_until_stopped(cancel_on_shutdown_signal()).await?;
            Ok(())
        }),
    }
}
