//! The pool as operators watch it, in the OpenTelemetry database-client conventions:
//! connections by state (`db_client_connection_count{state="used"|"idle"}`), the most it may
//! hold, how long requests waited for one, and how many gave up waiting (then answered 503).

use std::time::Duration;

use observability::{ComputedGauge, DURATION_BUCKETS, Registry};
use prometheus::{Histogram, HistogramOpts, IntCounter, Opts};

use crate::pool::Pool;

pub(crate) struct PoolMetrics {
    wait: Histogram,
    timeouts: IntCounter,
}

impl PoolMetrics {
    pub(crate) fn register(
        registry: &Registry,
        pool: &Pool,
        name: &str,
    ) -> Result<Self, prometheus::Error> {
        let labelled = |metric: &str, help: &str| {
            Opts::new(metric, help).const_label("db_client_connection_pool_name", name)
        };
        let counted = pool.clone();
        ComputedGauge::register_labelled(
            registry,
            labelled("db_client_connection_count", "Pooled connections by state."),
            &["db_client_connection_state"],
            move || {
                let state = counted.state();
                let used = state.connections.saturating_sub(state.idle_connections);
                vec![
                    (vec!["used".to_owned()], f64::from(used)),
                    (vec!["idle".to_owned()], f64::from(state.idle_connections)),
                ]
            },
        )?;
        let max = f64::from(pool.max_size());
        ComputedGauge::register(
            registry,
            labelled(
                "db_client_connection_max",
                "The most connections the pool may hold.",
            ),
            move || max,
        )?;
        let wait = Histogram::with_opts(
            HistogramOpts::new(
                "db_client_connection_wait_time_seconds",
                "Time requests waited for a pooled connection.",
            )
            .const_label("db_client_connection_pool_name", name)
            .buckets(DURATION_BUCKETS.to_vec()),
        )?;
        let timeouts = IntCounter::with_opts(labelled(
            "db_client_connection_timeouts_total",
            "Requests that waited out database.connection_timeout_ms for a connection.",
        ))?;
        Ok(Self {
            wait: observability::register(registry, wait)?,
            timeouts: observability::register(registry, timeouts)?,
        })
    }

    pub(crate) fn waited(&self, wait: Duration, got_one: bool) {
        self.wait.observe(wait.as_secs_f64());
        if !got_one {
            self.timeouts.inc();
        }
    }
}
