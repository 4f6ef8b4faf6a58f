//! `cargo run --release`: the whole bookstore in one process. See the README's quickstart.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use auth_service::accounts::Registration;
use bookstore::{Addresses, Ports, Stack, StackSettings};
use clap::{Parser, Subcommand};
use service_support::{
    BoxError, LogFormat, ServiceSettings, TelemetrySettings, cancel_on_shutdown_signal, fail,
    init_telemetry, load_settings,
};

#[derive(Parser)]
#[command(
    name = "bookstore",
    version,
    about = "The whole bookstore in one process: auth-service, books-service and the gateway on SQLite.",
    after_help = "Each service also reads its own settings from the environment (AUTH__…, BOOKS__…, GATEWAY__…; see the README)."
)]
struct Cli {
    /// Folder for the SQLite databases and the signing key; created on the first run.
    #[arg(
        long,
        global = true,
        env = "BOOKSTORE_DATA_DIR",
        default_value = "data"
    )]
    data_dir: PathBuf,
    /// Address the three services bind to.
    #[arg(long, env = "BOOKSTORE_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// HTTP port of the gateway (the public API) [default: 8080]; 0 picks a free one.
    #[arg(long, env = "BOOKSTORE_HTTP_PORT")]
    http_port: Option<u16>,
    /// gRPC port of auth-service [default: 8081]; 0 picks a free one.
    #[arg(long, env = "BOOKSTORE_AUTH_PORT")]
    auth_port: Option<u16>,
    /// gRPC port of books-service [default: 8082]; 0 picks a free one.
    #[arg(long, env = "BOOKSTORE_BOOKS_PORT")]
    books_port: Option<u16>,
    /// The gateway's management port (/metrics, /healthz, /readyz) [default: 9464].
    #[arg(long, env = "BOOKSTORE_GATEWAY_MANAGEMENT_PORT")]
    gateway_management_port: Option<u16>,
    /// auth-service's management port [default: 9465].
    #[arg(long, env = "BOOKSTORE_AUTH_MANAGEMENT_PORT")]
    auth_management_port: Option<u16>,
    /// books-service's management port [default: 9466].
    #[arg(long, env = "BOOKSTORE_BOOKS_MANAGEMENT_PORT")]
    books_management_port: Option<u16>,
    /// `text` (coloured only on a terminal, and never with NO_COLOR set) or `json` lines.
    #[arg(long, global = true, env = "BOOKSTORE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the stack until SIGINT or SIGTERM (the default).
    Serve,
    /// Create an administrator in the data folder's auth database, whether the stack is running
    /// or not. The password is read from the first line of standard input, so it never appears
    /// in the process list or shell history.
    CreateAdmin {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail("bookstore", &*error),
    }
}

fn run(cli: Cli) -> Result<(), BoxError> {
    let (command, log_format) = (cli.command, cli.log_format);
    let settings = StackSettings {
        data_dir: cli.data_dir,
        host: cli.host,
        ports: Ports {
            http: cli.http_port,
            auth: cli.auth_port,
            books: cli.books_port,
            gateway_management: cli.gateway_management_port,
            auth_management: cli.auth_management_port,
            books_management: cli.books_management_port,
        },
        auth: service_settings()?,
        books: service_settings()?,
        gateway: service_settings()?,
    };
    // Each service reports its spans as itself, though all three share this process; the
    // gateway is named first since its HTTP requests begin most of the work.
    let telemetry = init_telemetry(
        &TelemetrySettings {
            log_format: if log_format == "json" {
                LogFormat::Json
            } else {
                LogFormat::Text
            },
            ..TelemetrySettings::default()
        },
        &["gateway", "auth-service", "books-service"],
    )?;
    let outcome = serve_or_create_admin(command, settings);
    telemetry.shutdown();
    outcome
}

fn serve_or_create_admin(
    command: Option<Command>,
    settings: StackSettings,
) -> Result<(), BoxError> {
    if let Some(Command::CreateAdmin { username, email }) = command {
        let registration =
            Registration::with_password_from(username, email, std::io::stdin().lock())?;
        let admin = tokio::runtime::Runtime::new()?
            .block_on(bookstore::create_admin(settings, registration))?;
        println!("created admin {} ({})", admin.username, admin.id);
        return Ok(());
    }
    tokio::runtime::Runtime::new()?.block_on(async {
        let data_dir = settings.data_dir.clone();
        let stack = Stack::build(settings).await?;
        println!("{}", banner(&stack.addresses(), &data_dir));
        stack.run_until_stopped(cancel_on_shutdown_signal()).await?;
        println!("bookstore stopped");
        Ok(())
    })
}

fn service_settings<S: ServiceSettings>() -> Result<S, BoxError> {
    Ok(load_settings(S::ENV_PREFIX, None, S::LIST_KEYS)?)
}

fn banner(addresses: &Addresses, data_dir: &std::path::Path) -> String {
    let api = format!("http://{}", addresses.http);
    format!(
        "\nBookstore is running (data in {data}).\n\
         \n  API          {api}\n  Console      {api}/\n  API docs     {api}/docs\n  auth gRPC    {auth}\n  books gRPC   {books}\n\
         \n  Metrics      http://{gateway_management}/metrics (gateway)\n               http://{auth_management}/metrics (auth-service)\n               http://{books_management}/metrics (books-service)\n\
         \nTry it:\n  curl -s {api}/api/auth/register -H 'content-type: application/json' \\\n    \
         -d '{{\"username\":\"ada\",\"email\":\"ada@example.org\",\"password\":\"correct horse battery\"}}'\n\
         \nPress Ctrl-C to stop.\n",
        data = data_dir.display(),
        auth = addresses.auth,
        books = addresses.books,
        gateway_management = addresses.management[0],
        auth_management = addresses.management[1],
        books_management = addresses.management[2],
    )
}
