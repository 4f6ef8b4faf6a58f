//! auth-service settings: built-in defaults, then an optional TOML file (`--config`), then
//! `AUTH__…` environment variables. Every key is documented in the README.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use database::DatabaseSettings;
use observability::ManagementSettings;
use revocation::RedisSettings;
use serde::Deserialize;
use service_support::{ServiceSettings, TelemetrySettings, check_ranges};
use token_verifier::VerifierSettings;

/// Prefix of the environment variables: `AUTH__DATABASE__URL` sets `database.url`.
pub const ENV_PREFIX: &str = "AUTH";

/// Keys whose environment value is a comma-separated list.
pub const LIST_KEYS: &[&str] = &["tokens.previous_key_files"];

/// Where the database lives when `database.url` is not set.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/auth.db";

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
    pub tokens: TokenSettings,
    pub passwords: PasswordSettings,
    pub login_throttle: ThrottleSettings,
    pub revocation: RevocationSettings,
    pub telemetry: TelemetrySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            shutdown_grace_secs: 10,
            management: ManagementSettings::on_port(9465),
            database: DatabaseSettings::default(),
            redis: RedisSettings::default(),
            tokens: TokenSettings::default(),
            passwords: PasswordSettings::default(),
            login_throttle: ThrottleSettings::default(),
            revocation: RevocationSettings::default(),
            telemetry: TelemetrySettings::default(),
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

    /// A throw-away instance, for tests: any free loopback port, the given database, Redis
    /// namespace and key, bcrypt cost 4, revocations retried every 100 ms.
    pub fn for_tests(
        database_url: &str,
        redis_url: &str,
        redis_prefix: &str,
        signing_key_file: PathBuf,
    ) -> Self {
        let mut settings = Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            shutdown_grace_secs: 1,
            management: ManagementSettings::on_port(0),
            ..Self::default()
        };
        settings.database.url = Some(database_url.into());
        settings.redis.url = Some(redis_url.into());
        settings.redis.key_prefix = redis_prefix.to_owned();
        settings.redis.timeout_ms = 2_000;
        settings.tokens.signing_key_file = Some(signing_key_file);
        settings.passwords.bcrypt_cost = 4;
        settings.revocation.retry_interval_ms = 100;
        settings
    }
}

/// `tokens.*`: what tokens say, how long they live, and the keys that sign them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    /// `iss` of every token; verifiers must expect the same.
    pub issuer: String,
    /// `aud` of every token; verifiers must expect the same.
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway_secs: u64,
    pub access_ttl_secs: u64,
    /// A session dies when it goes this long without a refresh.
    pub refresh_idle_ttl_secs: u64,
    /// A session dies this long after login, however often it is refreshed.
    pub session_max_ttl_secs: u64,
    /// How long the previous refresh token of a session still gets the current pair, for
    /// clients whose tabs or retries race (docs/architecture.md).
    pub refresh_grace_secs: u64,
    /// PEM file (PKCS#8) of the key that signs new tokens. Its type picks the algorithm:
    /// Ed25519 → EdDSA, RSA → RS256, P-256 → ES256. `auth-service keygen` writes one.
    pub signing_key_file: Option<PathBuf>,
    /// PEM files of earlier signing keys, still published so that their tokens verify until
    /// they expire.
    pub previous_key_files: Vec<PathBuf>,
}

impl Default for TokenSettings {
    fn default() -> Self {
        let verifier = VerifierSettings::default();
        Self {
            issuer: verifier.issuer,
            audience: verifier.audience,
            leeway_secs: verifier.leeway_secs,
            access_ttl_secs: 15 * 60,
            refresh_idle_ttl_secs: 14 * 24 * 3600,
            session_max_ttl_secs: 30 * 24 * 3600,
            refresh_grace_secs: 10,
            signing_key_file: None,
            previous_key_files: Vec::new(),
        }
    }
}

impl TokenSettings {
    /// How long a revocation must be remembered by verifiers: until every access token it may
    /// cover has expired, allowing for clock skew.
    pub fn revocation_ttl(&self) -> Duration {
        Duration::from_secs(self.access_ttl_secs + self.leeway_secs)
    }
}

impl TokenSettings {
    pub fn verifier(&self) -> VerifierSettings {
        VerifierSettings {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            leeway_secs: self.leeway_secs,
        }
    }
}

/// `passwords.*`: the password policy and the hashing pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordSettings {
    /// bcrypt cost factor (4–31). Each step doubles the time of a hash.
    pub bcrypt_cost: u32,
    /// Minimum length in characters. The maximum is bcrypt's 72 bytes.
    pub min_length: usize,
    /// Also require three of: lower case, upper case, digit, other.
    pub require_character_classes: bool,
    /// Hashes computed at once; 0 means one per CPU.
    pub hashing_threads: usize,
    /// Hashes allowed to wait for a thread; beyond that, requests get UNAVAILABLE.
    pub hashing_queue: usize,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        Self {
            bcrypt_cost: 12,
            min_length: 8,
            require_character_classes: false,
            hashing_threads: 0,
            hashing_queue: 64,
        }
    }
}

/// `login_throttle.*`: failed-login limits. The per-client limit stops one attacker quickly
/// without locking the real user (who logs in from elsewhere) out; the per-account limit
/// bounds a distributed attack.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Failures allowed per account and client address within `client_window_secs`.
    pub client_max_failures: u32,
    pub client_window_secs: u64,
    /// Failures allowed per account from all addresses within `account_window_secs`.
    pub account_max_failures: u32,
    pub account_window_secs: u64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            client_max_failures: 10,
            client_window_secs: 15 * 60,
            account_max_failures: 100,
            account_window_secs: 3600,
        }
    }
}

/// `revocation.*`: how revocations reach the shared store.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RevocationSettings {
    /// How often unpublished revocations are retried, and the store checked for a restart.
    pub retry_interval_ms: u64,
}

impl Default for RevocationSettings {
    fn default() -> Self {
        Self {
            retry_interval_ms: 1_000,
        }
    }
}

impl RevocationSettings {
    pub fn retry_interval(&self) -> Duration {
        Duration::from_millis(self.retry_interval_ms)
    }
}

const YEAR_SECS: u64 = 365 * 24 * 3600;

impl Settings {
    /// Every numeric key as a `(key, value, min, max)` row: this service's own, then those of
    /// the shared sections, which each check their own keys.
    pub fn ranges(&self) -> Vec<(&'static str, u64, u64, u64)> {
        let t = &self.tokens;
        let p = &self.passwords;
        let l = &self.login_throttle;
        let mut ranges = vec![
            ("shutdown_grace_secs", self.shutdown_grace_secs, 0, 3_600),
            ("passwords.bcrypt_cost", p.bcrypt_cost.into(), 4, 31),
            ("passwords.min_length", p.min_length as u64, 1, 72),
            // 0 means one per CPU; more than this many threads would only thrash.
            (
                "passwords.hashing_threads",
                p.hashing_threads as u64,
                0,
                1_024,
            ),
            // Bounded so that a full queue still answers within minutes, and the semaphore
            // (threads + queue permits) can be built.
            ("passwords.hashing_queue", p.hashing_queue as u64, 0, 10_000),
            ("tokens.access_ttl_secs", t.access_ttl_secs, 1, 24 * 3600),
            (
                "tokens.refresh_idle_ttl_secs",
                t.refresh_idle_ttl_secs,
                1,
                10 * YEAR_SECS,
            ),
            (
                "tokens.session_max_ttl_secs",
                t.session_max_ttl_secs,
                1,
                10 * YEAR_SECS,
            ),
            ("tokens.refresh_grace_secs", t.refresh_grace_secs, 0, 3600),
            (
                "login_throttle.client_max_failures",
                l.client_max_failures.into(),
                1,
                1_000_000,
            ),
            (
                "login_throttle.client_window_secs",
                l.client_window_secs,
                1,
                YEAR_SECS,
            ),
            (
                "login_throttle.account_max_failures",
                l.account_max_failures.into(),
                1,
                1_000_000,
            ),
            (
                "login_throttle.account_window_secs",
                l.account_window_secs,
                1,
                YEAR_SECS,
            ),
            (
                "revocation.retry_interval_ms",
                self.revocation.retry_interval_ms,
                10,
                3_600_000,
            ),
        ];
        // `tokens.leeway_secs` is the verifiers' key too: it is bounded where they bound it.
        ranges.extend(t.verifier().ranges());
        ranges.extend(self.database.ranges());
        ranges.extend(self.redis.ranges());
        ranges
    }

    /// Checks what serde cannot: ranges and non-empty values.
    ///
    /// # Errors
    /// One line naming the first offending key and its allowed range.
    pub fn validate(&self) -> Result<(), String> {
        check_ranges(&self.ranges())?;
        if self.tokens.issuer.trim().is_empty() {
            return Err("tokens.issuer must not be empty".to_owned());
        }
        if self.tokens.audience.trim().is_empty() {
            return Err("tokens.audience must not be empty".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use service_support::{SettingsError, load_settings_from_map};
    use test_support::{Bound, assert_bounds};

    use super::*;

    fn from_env(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        load_settings_from_map(ENV_PREFIX, None, LIST_KEYS, map)
    }

    #[test]
    fn environment_variables_override_nested_defaults() {
        let settings = from_env(&[
            ("AUTH__LISTEN_ADDR", "0.0.0.0:6000"),
            ("AUTH__PASSWORDS__BCRYPT_COST", "10"),
            (
                "AUTH__TOKENS__PREVIOUS_KEY_FILES",
                "/keys/a.pem,/keys/b.pem",
            ),
        ])
        .unwrap();
        assert_eq!(settings.listen_addr.port(), 6000);
        assert_eq!(settings.passwords.bcrypt_cost, 10);
        assert_eq!(
            settings.passwords.min_length, 8,
            "untouched keys keep their defaults"
        );
        assert_eq!(settings.tokens.previous_key_files.len(), 2);
    }

    #[test]
    fn a_misspelt_key_is_an_error_naming_it() {
        let error = from_env(&[("AUTH__DATABSE__URL", "postgres://x")]).unwrap_err();
        assert!(error.to_string().contains("databse"), "{error}");
    }

    #[test]
    fn defaults_are_valid_and_ranges_are_enforced() {
        assert_eq!(Settings::default().validate(), Ok(()));
        let mut settings = Settings::default();
        settings.passwords.bcrypt_cost = 3;
        assert!(
            settings
                .validate()
                .unwrap_err()
                .contains("passwords.bcrypt_cost")
        );
    }

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
            tokens:
                TokenSettings {
                    issuer: _,
                    audience: _,
                    leeway_secs: _,
                    access_ttl_secs: _,
                    refresh_idle_ttl_secs: _,
                    session_max_ttl_secs: _,
                    refresh_grace_secs: _,
                    signing_key_file: _,
                    previous_key_files: _,
                },
            passwords:
                PasswordSettings {
                    bcrypt_cost: _,
                    min_length: _,
                    require_character_classes: _,
                    hashing_threads: _,
                    hashing_queue: _,
                },
            login_throttle:
                ThrottleSettings {
                    client_max_failures: _,
                    client_window_secs: _,
                    account_max_failures: _,
                    account_window_secs: _,
                },
            revocation: RevocationSettings {
                retry_interval_ms: _,
            },
            telemetry: _,
        } = Settings::default();
        let table: &[Bound<Settings>] = &[
            (
                "shutdown_grace_secs",
                |s, v| s.shutdown_grace_secs = v,
                0,
                3_600,
            ),
            (
                "tokens.leeway_secs",
                |s, v| s.tokens.leeway_secs = v,
                0,
                300,
            ),
            (
                "tokens.access_ttl_secs",
                |s, v| s.tokens.access_ttl_secs = v,
                1,
                86_400,
            ),
            (
                "tokens.refresh_idle_ttl_secs",
                |s, v| s.tokens.refresh_idle_ttl_secs = v,
                1,
                10 * YEAR_SECS,
            ),
            (
                "tokens.session_max_ttl_secs",
                |s, v| s.tokens.session_max_ttl_secs = v,
                1,
                10 * YEAR_SECS,
            ),
            (
                "tokens.refresh_grace_secs",
                |s, v| s.tokens.refresh_grace_secs = v,
                0,
                3_600,
            ),
            (
                "passwords.bcrypt_cost",
                |s, v| s.passwords.bcrypt_cost = v.try_into().unwrap(),
                4,
                31,
            ),
            (
                "passwords.min_length",
                |s, v| s.passwords.min_length = v.try_into().unwrap(),
                1,
                72,
            ),
            (
                "passwords.hashing_threads",
                |s, v| s.passwords.hashing_threads = v.try_into().unwrap(),
                0,
                1_024,
            ),
            (
                "passwords.hashing_queue",
                |s, v| s.passwords.hashing_queue = v.try_into().unwrap(),
                0,
                10_000,
            ),
            (
                "login_throttle.client_max_failures",
                |s, v| s.login_throttle.client_max_failures = v.try_into().unwrap(),
                1,
                1_000_000,
            ),
            (
                "login_throttle.client_window_secs",
                |s, v| s.login_throttle.client_window_secs = v,
                1,
                YEAR_SECS,
            ),
            (
                "login_throttle.account_max_failures",
                |s, v| s.login_throttle.account_max_failures = v.try_into().unwrap(),
                1,
                1_000_000,
            ),
            (
                "login_throttle.account_window_secs",
                |s, v| s.login_throttle.account_window_secs = v,
                1,
                YEAR_SECS,
            ),
            (
                "revocation.retry_interval_ms",
                |s, v| s.revocation.retry_interval_ms = v,
                10,
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
            settings.tokens.verifier().ranges().to_vec(),
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
}
