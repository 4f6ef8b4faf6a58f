//! The books-service binary: serve gRPC until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use books_service::{Application, Settings};
use clap::{Parser, Subcommand};
use service_support::{cancel_on_shutdown_signal, run_binary};

#[derive(Parser)]
#[command(
    name = "books-service",
    version,
    about = "The bookstore's books over gRPC"
)]
struct Cli {
    /// TOML settings file; BOOKS__* environment variables override it.
    #[arg(long, global = true, env = "BOOKS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC until SIGINT or SIGTERM (the default).
    Serve,
    /// Exit 0 if the configured server reports SERVING (for container health checks).
    Probe,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = cli.config.as_deref();
    match cli.command {
        Some(Command::Probe) => {
            run_binary("books-service", config, |settings: Settings| async move {
                service_support::grpc::probe(
                    settings.listen_addr,
                    "bookstore.books.v1.BooksService",
                )
                .await
            })
        }
        Some(Command::Serve) | None => {
            run_binary("books-service", config, |settings: Settings| async {
                let app = Application::build(settings).await?;
                app.run_until_stopped(cancel_on_shutdown_signal()).await?;
                Ok(())
            })
        }
    }
}
