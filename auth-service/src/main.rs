//! The auth-service binary: serve gRPC, generate a signing key, or create the first admin.

use std::path::PathBuf;
use std::process::ExitCode;

use auth_service::accounts::Registration;
use auth_service::keys::{KeyKind, write_new_key};
use auth_service::{Application, Settings, startup};
use clap::{Parser, Subcommand};
use service_support::{cancel_on_shutdown_signal, fail, run_binary};

#[derive(Parser)]
#[command(
    name = "auth-service",
    version,
    about = "Users, passwords, sessions and tokens over gRPC"
)]
struct Cli {
    /// TOML settings file; AUTH__* environment variables override it.
    #[arg(long, global = true, env = "AUTH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC until SIGINT or SIGTERM (the default).
    Serve,
    /// Write a new signing key (PKCS#8 PEM, mode 0600) and print its key id.
    Keygen {
        #[arg(long, value_enum, default_value = "ed25519")]
        kind: KeyKind,
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
        /// Succeed without writing when the file already exists (for init containers).
        #[arg(long)]
        if_missing: bool,
    },
    /// Exit 0 if the configured server reports SERVING (for container health checks).
    Probe,
    /// Create an administrator account. The password is read from the first line of standard
    /// input, so it never appears in the process list or shell history.
    CreateAdmin {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Keygen {
            out, if_missing, ..
        }) if if_missing && out.exists() => {
            println!("{} exists; keeping it", out.display());
            ExitCode::SUCCESS
        }
        Some(Command::Keygen { kind, out, .. }) => match write_new_key(&out, kind) {
            Ok(key) => {
                let kind = match kind {
                    KeyKind::Ed25519 => "Ed25519 (EdDSA)",
                    KeyKind::Rsa => "RSA (RS256)",
                    KeyKind::P256 => "P-256 (ES256)",
                };
                println!("wrote {kind} key {} to {}", key.kid(), out.display());
                ExitCode::SUCCESS
            }
            Err(error) => fail("auth-service", &error),
        },
        Some(Command::CreateAdmin { username, email }) => run_binary(
            "auth-service",
            cli.config.as_deref(),
            |settings: Settings| async move {
                let registration =
                    Registration::with_password_from(username, email, std::io::stdin().lock())?;
                let admin = startup::create_admin(&settings, registration).await?;
                println!("created admin {} ({})", admin.username, admin.id);
                Ok(())
            },
        ),
        Some(Command::Probe) => run_binary(
            "auth-service",
            cli.config.as_deref(),
            |settings: Settings| async move {
                service_support::grpc::probe(settings.listen_addr, "bookstore.auth.v1.AuthService")
                    .await
            },
        ),
        Some(Command::Serve) | None => run_binary(
            "auth-service",
            cli.config.as_deref(),
            |settings: Settings| async {
                let app = Application::build(settings).await?;
                app.run_until_stopped(cancel_on_shutdown_signal()).await?;
                Ok(())
            },
        ),
    }
}
