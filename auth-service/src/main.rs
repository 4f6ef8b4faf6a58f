//! The auth-service binary: serve gRPC, generate a signing key, or create the first admin.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use auth_service::accounts::Registration;
use auth_service::config::{ENV_PREFIX, LIST_KEYS};
use auth_service::domain::Roles;
use auth_service::keys::{KeyKind, write_new_key};
use auth_service::{Application, Settings, startup};
use clap::{Parser, Subcommand};
use revocation::{MemoryStore, Revocations};
use service_support::{cancel_on_shutdown_signal, init_telemetry, load_settings};

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
    },
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
    if let Some(Command::Keygen { kind, out }) = &cli.command {
        return match write_new_key(out, *kind) {
            Ok(key) => {
                println!(
                    "wrote {} key {} to {}",
                    kind_name(*kind),
                    key.kid(),
                    out.display()
                );
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        };
    }
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
    let outcome = runtime.block_on(async move {
        match cli.command {
            Some(Command::CreateAdmin { username, email }) => {
                create_admin(settings, username, email).await
            }
            _ => serve(settings).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&*error),
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn serve(settings: Settings) -> Result<(), BoxError> {
    let app = Application::build(settings).await?;
    app.run_until_stopped(cancel_on_shutdown_signal()).await?;
    Ok(())
}

async fn create_admin(settings: Settings, username: String, email: String) -> Result<(), BoxError> {
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    // Nothing is revoked here, so the store is never read.
    let store = Revocations::Memory(std::sync::Arc::new(MemoryStore::default()));
    let state = startup::build_state(&settings, store).await?;
    let registration = Registration {
        username,
        email,
        password,
    };
    let (user, _) = state
        .register(registration, Roles::admin(), None)
        .await
        .map_err(|error| tonic::Status::from(error).message().to_owned())?;
    println!("created admin {} ({})", user.username, user.id);
    Ok(())
}

fn kind_name(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Ed25519 => "Ed25519 (EdDSA)",
        KeyKind::Rsa => "RSA (RS256)",
        KeyKind::P256 => "P-256 (ES256)",
    }
}

fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("auth-service: {error}");
    ExitCode::FAILURE
}
