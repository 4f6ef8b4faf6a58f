//! The books-service binary: serve gRPC until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use books_service::{Application, Settings};
use clap::Parser;
use service_support::{cancel_on_shutdown_signal, run_binary};

#[derive(Parser)]
#[command(
    name = "books-service",
    version,
    about = "The bookstore's books over gRPC"
)]
struct Cli {
    /// TOML settings file; BOOKS__* environment variables override it.
    #[arg(long, env = "BOOKS_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    run_binary(
        "books-service",
        cli.config.as_deref(),
        |settings: Settings| async {
            let app = Application::build(settings).await?;
            app.run_until_stopped(cancel_on_shutdown_signal()).await?;
            Ok(())
        },
    )
}
