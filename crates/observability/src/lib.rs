//! What every service shows its operators, alike: Prometheus metrics and health on a
//! management listener of its own, apart from the port clients use ([`management`]), the
//! duration and the span of every gRPC call it serves or makes ([`rpc`]), and the export of
//! its spans, each trace continued across the services ([`traces`]).
//!
//! Metric names follow the OpenTelemetry semantic conventions in Prometheus spelling
//! (`rpc_server_call_duration_seconds`, `http_server_request_duration_seconds`, …); what the
//! conventions do not cover is prefixed `bookstore_`. Each service keeps its metrics in a
//! [`prometheus::Registry`] of its own, so that several can share a process (the one-process
//! launcher, the tests) and still report as themselves.

pub mod management;
pub mod rpc;
pub mod traces;

pub use management::{ManagementSettings, serve_management};
pub use prometheus::Registry;
pub use rpc::{CallMetrics, CallMetricsLayer};

/// Buckets for durations, in seconds: from 0.1 ms (a lookup in memory) to 10 s (a timeout),
/// fine enough to read the figures the benchmarks publish.
pub const DURATION_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Registers `collector` in `registry`.
///
/// # Errors
/// A metric of the same name is already registered there (a programming error).
pub fn register<C>(registry: &Registry, collector: C) -> Result<C, prometheus::Error>
where
    C: prometheus::core::Collector + Clone + 'static,
{
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

/// A gauge whose value is computed when it is scraped (the age of a key set, the state of a
/// pool): nothing has to keep it up to date meanwhile.
pub struct ComputedGauge {
    gauge: prometheus::GaugeVec,
    compute: Box<dyn Fn() -> Vec<(Vec<String>, f64)> + Send + Sync>,
}

impl ComputedGauge {
    /// A gauge without labels, set to `compute()` at each scrape.
    ///
    /// # Errors
    /// The metric is registered already, or its name is invalid.
    pub fn register(
        registry: &Registry,
        opts: prometheus::Opts,
        compute: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Result<(), prometheus::Error> {
        Self::register_labelled(registry, opts, &[], move || vec![(Vec::new(), compute())])
    }

    /// A gauge with `labels`, one series per `(label values, value)` that `compute()` returns
    /// at each scrape.
    ///
    /// # Errors
    /// The metric is registered already, or its name is invalid.
    pub fn register_labelled(
        registry: &Registry,
        opts: prometheus::Opts,
        labels: &[&str],
        compute: impl Fn() -> Vec<(Vec<String>, f64)> + Send + Sync + 'static,
    ) -> Result<(), prometheus::Error> {
        let gauge = prometheus::GaugeVec::new(opts, labels)?;
        registry.register(Box::new(Self {
            gauge,
            compute: Box::new(compute),
        }))
    }
}

impl prometheus::core::Collector for ComputedGauge {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        for (labels, value) in (self.compute)() {
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            if let Ok(series) = self.gauge.get_metric_with_label_values(&labels) {
                series.set(value);
            }
        }
        self.gauge.collect()
    }
}
