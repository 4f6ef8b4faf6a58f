//! gateway settings: built-in defaults, then an optional TOML file (`--config`), then
//! `GATEWAY__…` environment variables. Every key is documented in the README.

use std::net::SocketAddr;
use std::time::Duration;

use observability::ManagementSettings;
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
    pub management: ManagementSettings,
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
    pub console: ConsoleSettings,
    pub telemetry: TelemetrySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            management: ManagementSettings::on_port(9464),
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
            console: ConsoleSettings::default(),
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

/// `console.*`: the web console under `/ui/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    /// The origin people open the console at, such as `https://books.example.org`: state
    /// changes must come from it, and with `https` the session cookies are `Secure` and carry
    /// the `__Host-` prefix. Empty: the origin of each request's own `Host` over plain HTTP,
    /// for local use.
    pub public_origin: String,
    /// Books and users per page.
    pub page_size: u32,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            public_origin: String::new(),
            page_size: 10,
        }
    }
}

impl ConsoleSettings {
    /// Whether cookies travel over HTTPS only.
    pub fn secure(&self) -> bool {
        self.public_origin.starts_with("https://")
    }

    fn validate(&self) -> Result<(), String> {
        let origin = &self.public_origin;
        if origin.is_empty() {
            return Ok(());
        }
        let host = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .unwrap_or_default();
        if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!(
                "console.public_origin = {origin:?} must be http(s)://host[:port], without a path"
            ));
        }
        Ok(())
    }
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

    /// Every numeric key as a `(key, value, min, max)` row: this service's own, then those of
    /// the shared sections, which each check their own keys.
    pub fn ranges(&self) -> Vec<(&'static str, u64, u64, u64)> {
        let mut ranges = vec![
            ("workers", self.workers as u64, 0, 1_024),
            ("shutdown_grace_secs", self.shutdown_grace_secs, 0, 3_600),
            (
                "body_limit_bytes",
                self.body_limit_bytes as u64,
                1_024,
                64 * 1024 * 1024,
            ),
            ("auth.timeout_ms", self.auth.timeout_ms, 10, 60_000),
            (
                "auth.jwks_refresh_secs",
                self.auth.jwks_refresh_secs,
                1,
                86_400,
            ),
            // Tokens naming unknown keys are free to forge: each may cause a fetch at most this
            // often, so that they cannot turn into one call to auth-service per request.
            (
                "auth.jwks_min_refetch_ms",
                self.auth.jwks_min_refetch_ms,
                100,
                3_600_000,
            ),
            ("books.timeout_ms", self.books.timeout_ms, 10, 60_000),
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
            ("console.page_size", self.console.page_size.into(), 1, 100),
            // Browsers cap it lower still (Chromium at two hours).
            (
                "cors.max_age_secs",
                self.cors.max_age_secs as u64,
                0,
                86_400,
            ),
        ];
        ranges.extend(self.redis.ranges());
        ranges.extend(self.revocation.ranges());
        ranges.extend(self.tokens.ranges());
        ranges
    }

    /// Checks what serde cannot: ranges and well-formed URLs.
    ///
    /// # Errors
    /// One line naming the first offending key.
    pub fn validate(&self) -> Result<(), String> {
        check_ranges(&self.ranges())?;
        for (key, url) in [("auth.url", &self.auth.url), ("books.url", &self.books.url)] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "{key} = {url:?} must start with http:// or https://"
                ));
            }
        }
        self.console.validate()
    }
}

#[cfg(test)]
mod tests {
    use test_support::{Bound, assert_bounds};

    use super::*;

    #[test]
    fn every_numeric_key_of_this_service_is_range_checked() {
        // Every field by name, without `..`: a new key fails to compile here until it has a row
        // below (or is not numeric). The shared sections test their own keys.
        let Settings {
            listen_addr: _,
            management: _,
            workers: _,
            shutdown_grace_secs: _,
            body_limit_bytes: _,
            trust_forwarded_for: _,
            redis: _,
            revocation: _,
            revocation_fail_open: _,
            auth:
                AuthUpstream {
                    url: _,
                    timeout_ms: _,
                    jwks_refresh_secs: _,
                    jwks_min_refetch_ms: _,
                },
            books:
                BooksUpstream {
                    url: _,
                    timeout_ms: _,
                },
            tokens: _,
            auth_rate_limit:
                RateLimitSettings {
                    max_requests: _,
                    window_secs: _,
                },
            cors:
                CorsSettings {
                    allowed_origins: _,
                    max_age_secs: _,
                },
            console:
                ConsoleSettings {
                    public_origin: _,
                    page_size: _,
                },
            telemetry: _,
        } = Settings::default();
        let table: &[Bound<Settings>] = &[
            (
                "workers",
                |s, v| s.workers = v.try_into().unwrap(),
                0,
                1_024,
            ),
            (
                "shutdown_grace_secs",
                |s, v| s.shutdown_grace_secs = v,
                0,
                3_600,
            ),
            (
                "body_limit_bytes",
                |s, v| s.body_limit_bytes = v.try_into().unwrap(),
                1_024,
                64 * 1024 * 1024,
            ),
            ("auth.timeout_ms", |s, v| s.auth.timeout_ms = v, 10, 60_000),
            (
                "auth.jwks_refresh_secs",
                |s, v| s.auth.jwks_refresh_secs = v,
                1,
                86_400,
            ),
            (
                "auth.jwks_min_refetch_ms",
                |s, v| s.auth.jwks_min_refetch_ms = v,
                100,
                3_600_000,
            ),
            (
                "books.timeout_ms",
                |s, v| s.books.timeout_ms = v,
                10,
                60_000,
            ),
            (
                "auth_rate_limit.max_requests",
                |s, v| s.auth_rate_limit.max_requests = v.try_into().unwrap(),
                1,
                1_000_000,
            ),
            (
                "auth_rate_limit.window_secs",
                |s, v| s.auth_rate_limit.window_secs = v,
                1,
                86_400,
            ),
            (
                "cors.max_age_secs",
                |s, v| s.cors.max_age_secs = v.try_into().unwrap(),
                0,
                86_400,
            ),
            (
                "console.page_size",
                |s, v| s.console.page_size = v.try_into().unwrap(),
                1,
                100,
            ),
        ];
        assert_bounds(&Settings::default(), Settings::validate, table);
    }

    #[test]
    fn the_shared_sections_are_range_checked_by_their_own_rows() {
        let settings = Settings::default();
        let ranges = settings.ranges();
        let shared = [
            settings.redis.ranges().to_vec(),
            settings.revocation.ranges().to_vec(),
            settings.tokens.ranges().to_vec(),
        ];
        for row in shared.iter().flatten() {
            assert!(ranges.contains(row), "{} is not checked", row.0);
        }
        let mut zero_timeout = Settings::default();
        zero_timeout.redis.timeout_ms = 0;
        assert_eq!(
            zero_timeout.validate(),
            Err("redis.timeout_ms = 0 is out of range 1..=60000".to_owned())
        );
    }

    #[test]
    fn the_console_origin_is_an_origin() {
        let with = |origin: &str| {
            let mut settings = Settings::default();
            settings.console.public_origin = origin.to_owned();
            settings.validate()
        };
        for good in ["", "http://127.0.0.1:8080", "https://books.example.org"] {
            assert_eq!(with(good), Ok(()), "{good}");
        }
        for bad in [
            "books.example.org",
            "https://",
            "https://x.org/ui",
            "ftp://x.org",
        ] {
            assert!(
                with(bad).unwrap_err().contains("console.public_origin"),
                "{bad}"
            );
        }
    }
}
