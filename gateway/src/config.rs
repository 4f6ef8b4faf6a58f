//! gateway settings: built-in defaults, then an optional TOML file (`--config`), then
//! `GATEWAY__…` environment variables. Every key is documented in the README.

use std::net::SocketAddr;
use std::time::Duration;

use revocation::{CheckSettings, RedisSettings};
use serde::Deserialize;
use service_support::{ServiceSettings, TelemetrySettings, check_ranges};
use token_verifier::VerifierSettings;

/// Prefix of the environment variables: `GATEWAY__REDIS__URL` sets `redis.url`.
pub const ENV_PREFIX: &str = "GATEWAY";

/// Keys whose environment value is a comma-separated list.
pub const LIST_KEYS: &[&str] = &["cors.allowed_origins"];

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// HTTP listen address; port 0 picks a free port.
    pub listen_addr: SocketAddr,
    /// HTTP worker threads; 0 means one per CPU.
    pub workers: usize,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub shutdown_grace_secs: u64,
    /// Largest request body accepted; larger ones get 413.
    pub body_limit_bytes: usize,
    /// Take the client address from `X-Forwarded-For` (set by a trusted proxy in front of the
    /// gateway) instead of the TCP peer. Leave off when clients reach the gateway directly:
    /// they could forge the header.
    pub trust_forwarded_for: bool,
    pub redis: RedisSettings,
    pub revocation: CheckSettings,
    /// What to do when revocation cannot be checked (Redis unreachable): `false` answers 503
    /// (fail closed); `true` serves the request as if the token were not revoked.
    pub revocation_fail_open: bool,
    pub auth: AuthUpstream,
    pub books: BooksUpstream,
    pub tokens: VerifierSettings,
    pub auth_rate_limit: RateLimitSettings,
    pub cors: CorsSettings,
    pub telemetry: TelemetrySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 0,
            shutdown_grace_secs: 10,
            body_limit_bytes: 1024 * 1024,
            trust_forwarded_for: false,
            redis: RedisSettings::default(),
            revocation: CheckSettings::default(),
            revocation_fail_open: false,
            auth: AuthUpstream::default(),
            books: BooksUpstream::default(),
            tokens: VerifierSettings::default(),
            auth_rate_limit: RateLimitSettings::default(),
            cors: CorsSettings::default(),
            telemetry: TelemetrySettings::default(),
        }
    }
}

/// `auth.*`: auth-service, for the auth routes and its public keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthUpstream {
    pub url: String,
    /// Bound on connecting and on each call.
    pub timeout_ms: u64,
    /// How often the key set is refetched in the background.
    pub jwks_refresh_secs: u64,
    /// Minimum time between two fetches caused by tokens naming an unknown key.
    pub jwks_min_refetch_ms: u64,
}

impl Default for AuthUpstream {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:50051".to_owned(),
            timeout_ms: 5_000,
            jwks_refresh_secs: 300,
            jwks_min_refetch_ms: 5_000,
        }
    }
}

/// `books.*`: books-service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BooksUpstream {
    pub url: String,
    /// Bound on connecting and on each call.
    pub timeout_ms: u64,
}

impl Default for BooksUpstream {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:50052".to_owned(),
            timeout_ms: 5_000,
        }
    }
}

/// `auth_rate_limit.*`: requests to register, login and refresh allowed per client address,
/// counted in Redis so every gateway instance shares them (in process without Redis).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    pub max_requests: u32,
    pub window_secs: u64,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            max_requests: 30,
            window_secs: 60,
        }
    }
}

/// `cors.*`: cross-origin access for browser clients; off while `allowed_origins` is empty.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsSettings {
    /// Origins such as `https://app.example.org`; `*` allows any.
    pub allowed_origins: Vec<String>,
    /// How long browsers may cache a preflight answer.
    pub max_age_secs: usize,
}

impl ServiceSettings for Settings {
    const ENV_PREFIX: &'static str = ENV_PREFIX;
    const LIST_KEYS: &'static [&'static str] = LIST_KEYS;

    fn telemetry(&self) -> &TelemetrySettings {
        &self.telemetry
    }
}

impl Settings {
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// Checks what serde cannot: ranges and well-formed URLs.
    ///
    /// # Errors
    /// One line naming the first offending key.
    pub fn validate(&self) -> Result<(), String> {
        check_ranges(&[
            (
                "body_limit_bytes",
                self.body_limit_bytes as u64,
                1_024,
                64 * 1024 * 1024,
            ),
            ("workers", self.workers as u64, 0, 1_024),
            ("auth.timeout_ms", self.auth.timeout_ms, 10, 60_000),
            (
                "auth.jwks_refresh_secs",
                self.auth.jwks_refresh_secs,
                1,
                86_400,
            ),
            (
                "auth.jwks_min_refetch_ms",
                self.auth.jwks_min_refetch_ms,
                0,
                3_600_000,
            ),
            ("books.timeout_ms", self.books.timeout_ms, 10, 60_000),
            self.revocation.budget_range(),
            (
                "auth_rate_limit.max_requests",
                self.auth_rate_limit.max_requests.into(),
                1,
                1_000_000,
            ),
            (
                "auth_rate_limit.window_secs",
                self.auth_rate_limit.window_secs,
                1,
                86_400,
            ),
        ])?;
        for (key, url) in [("auth.url", &self.auth.url), ("books.url", &self.books.url)] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "{key} = {url:?} must start with http:// or https://"
                ));
            }
        }
        Ok(())
    }
}
