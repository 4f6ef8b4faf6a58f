//! Per-client-address limits on the auth routes (register, login, refresh), in fixed windows.
//! Counted in Redis so every gateway instance shares them; in process without Redis.
//! auth-service's per-account throttling sits behind this and holds on its own.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use tracing::Instrument;

use crate::config::RateLimitSettings;

pub enum RateLimiter {
    Redis {
        connection: ConnectionManager,
        prefix: String,
        timeout: Duration,
        settings: RateLimitSettings,
    },
    Memory {
        windows: Mutex<HashMap<String, (u32, Instant)>>,
        settings: RateLimitSettings,
    },
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Over the limit; retry after this many seconds.
    Limited(u64),
}

impl RateLimiter {
    pub fn new(
        connection: Option<ConnectionManager>,
        prefix: &str,
        timeout: Duration,
        settings: RateLimitSettings,
    ) -> Self {
        match connection {
            Some(connection) => Self::Redis {
                connection,
                prefix: prefix.to_owned(),
                timeout,
                settings,
            },
            None => Self::Memory {
                windows: Mutex::new(HashMap::new()),
                settings,
            },
        }
    }

    /// Counts one request from `client` and says whether it may proceed. When Redis cannot be
    /// asked the request is allowed (fail open): these limits only blunt floods, and
    /// auth-service still throttles per account.
    pub async fn hit(&self, client: &str) -> Decision {
        match self {
            Self::Redis {
                connection,
                prefix,
                timeout,
                settings,
            } => {
                let key = format!("{prefix}ratelimit:auth:{client}");
                let mut pipe = redis::pipe();
                pipe.incr(&key, 1)
                    .cmd("EXPIRE")
                    .arg(&key)
                    .arg(settings.window_secs)
                    .arg("NX")
                    .ignore()
                    .ttl(&key);
                let mut connection = connection.clone();
                let answer =
                    tokio::time::timeout(*timeout, pipe.query_async::<(u32, i64)>(&mut connection))
                        .instrument(observability::traces::database_span("redis", "rate limit"))
                        .await;
                match answer {
                    Ok(Ok((count, ttl))) if count > settings.max_requests => {
                        Decision::Limited(ttl.max(1).unsigned_abs())
                    }
                    Ok(Ok(_)) => Decision::Allowed,
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "rate limit not checked: Redis failed");
                        Decision::Allowed
                    }
                    Err(_) => {
                        tracing::warn!("rate limit not checked: Redis timed out");
                        Decision::Allowed
                    }
                }
            }
            Self::Memory { windows, settings } => {
                let now = Instant::now();
                let window = Duration::from_secs(settings.window_secs);
                let mut windows = windows.lock().unwrap_or_else(PoisonError::into_inner);
                windows.retain(|_, (_, ends)| *ends > now);
                let (count, ends) = windows
                    .entry(client.to_owned())
                    .or_insert((0, now + window));
                *count += 1;
                if *count > settings.max_requests {
                    Decision::Limited((*ends - now).as_secs().max(1))
                } else {
                    Decision::Allowed
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_in_process_limiter_counts_per_client_within_the_window() {
        let limiter = RateLimiter::new(
            None,
            "",
            Duration::from_secs(1),
            RateLimitSettings {
                max_requests: 2,
                window_secs: 60,
            },
        );
        assert_eq!(limiter.hit("a").await, Decision::Allowed);
        assert_eq!(limiter.hit("a").await, Decision::Allowed);
        assert!(
            matches!(limiter.hit("a").await, Decision::Limited(secs) if (1..=60).contains(&secs))
        );
        assert_eq!(limiter.hit("b").await, Decision::Allowed);
    }
}
