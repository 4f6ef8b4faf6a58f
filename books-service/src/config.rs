//! books-service settings: built-in defaults, then an optional TOML file (`--config`), then
//! `BOOKS__…` environment variables. Every key is documented in the README.

use std::net::SocketAddr;
use std::time::Duration;

use database::DatabaseSettings;
use observability::ManagementSettings;
use revocation::{CheckSettings, RedisSettings};
use serde::Deserialize;
use service_support::{ServiceSettings, TelemetrySettings, check_ranges};
use token_verifier::VerifierSettings;

/// Prefix of the environment variables: `BOOKS__DATABASE__URL` sets `database.url`.
pub const ENV_PREFIX: &str = "BOOKS";

/// Keys whose environment value is a comma-separated list.
pub const LIST_KEYS: &[&str] = &[];

/// Where the database lives when `database.url` is not set.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/books.db";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// gRPC listen address; port 0 picks a free port.
    pub listen_addr: SocketAddr,
    /// How long in-flight calls may take to finish after a shutdown signal.
    pub shutdown_grace_secs: u64,
    pub management: ManagementSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub revocation: CheckSettings,
    pub auth: AuthSettings,
    pub tokens: VerifierSettings,
    pub telemetry: TelemetrySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50052)),
            shutdown_grace_secs: 10,
            management: ManagementSettings::on_port(9466),
            database: DatabaseSettings::default(),
            redis: RedisSettings::default(),
            revocation: CheckSettings::default(),
            auth: AuthSettings::default(),
            tokens: VerifierSettings::default(),
            telemetry: TelemetrySettings::default(),
        }
    }
}

/// `auth.*`: where auth-service publishes its keys, and how they are kept fresh.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// auth-service's gRPC endpoint.
    pub url: String,
    /// Bound on connecting to auth-service and on each GetJwks call.
    pub timeout_ms: u64,
    /// How often the key set is refetched in the background.
    pub jwks_refresh_secs: u64,
    /// Minimum time between two fetches caused by tokens naming an unknown key.
    pub jwks_min_refetch_ms: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:50051".to_owned(),
            timeout_ms: 2_000,
            jwks_refresh_secs: 300,
            jwks_min_refetch_ms: 5_000,
        }
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
            ("shutdown_grace_secs", self.shutdown_grace_secs, 0, 3_600),
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
        ];
        ranges.extend(self.database.ranges());
        ranges.extend(self.redis.ranges());
        ranges.extend(self.revocation.ranges());
        ranges.extend(self.tokens.ranges());
        ranges
    }

    /// Checks what serde cannot: ranges and non-empty values.
    ///
    /// # Errors
    /// One line naming the first offending key.
    pub fn validate(&self) -> Result<(), String> {
        check_ranges(&self.ranges())?;
        if !(self.auth.url.starts_with("http://") || self.auth.url.starts_with("https://")) {
            return Err(format!(
                "auth.url = {:?} must start with http:// or https://",
                self.auth.url
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use service_support::load_settings_from_map;
    use test_support::{Bound, assert_bounds};

    use super::*;

    #[test]
    fn every_numeric_key_of_this_service_is_range_checked() {
        // Every field by name, without `..`: a new key fails to compile here until it has a row
        // below (or is not numeric). The shared sections test their own keys.
        let Settings {
            listen_addr: _,
            shutdown_grace_secs: _,
            management: _,
            database: _,
            redis: _,
            revocation: _,
            auth:
                AuthSettings {
                    url: _,
                    timeout_ms: _,
                    jwks_refresh_secs: _,
                    jwks_min_refetch_ms: _,
                },
            tokens: _,
            telemetry: _,
        } = Settings::default();
        let table: &[Bound<Settings>] = &[
            (
                "shutdown_grace_secs",
                |s, v| s.shutdown_grace_secs = v,
                0,
                3_600,
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
        ];
        assert_bounds(&Settings::default(), Settings::validate, table);
    }

    #[test]
    fn the_shared_sections_are_range_checked_by_their_own_rows() {
        let settings = Settings::default();
        let ranges = settings.ranges();
        let shared = [
            settings.database.ranges().to_vec(),
            settings.redis.ranges().to_vec(),
            settings.revocation.ranges().to_vec(),
            settings.tokens.ranges().to_vec(),
        ];
        for row in shared.iter().flatten() {
            assert!(ranges.contains(row), "{} is not checked", row.0);
        }
        let mut zero_timeout = Settings::default();
        zero_timeout.database.connection_timeout_ms = 0;
        assert_eq!(
            zero_timeout.validate(),
            Err("database.connection_timeout_ms = 0 is out of range 1..=60000".to_owned())
        );
    }

    #[test]
    fn environment_variables_override_defaults_and_typos_fail() {
        let vars = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let settings: Settings = load_settings_from_map(
            ENV_PREFIX,
            None,
            LIST_KEYS,
            vars(&[
                ("BOOKS__AUTH__URL", "http://auth:50051"),
                ("BOOKS__TOKENS__LEEWAY_SECS", "2"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.auth.url, "http://auth:50051");
        assert_eq!(settings.tokens.leeway_secs, 2);
        assert_eq!(settings.validate(), Ok(()));
        let typo = load_settings_from_map::<Settings>(
            ENV_PREFIX,
            None,
            LIST_KEYS,
            vars(&[("BOOKS__AUTH__URI", "x")]),
        );
        assert!(typo.unwrap_err().to_string().contains("uri"));
    }
}
