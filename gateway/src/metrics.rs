//! The gateway's metrics, in its own registry (several instances can share a process, as in
//! tests), served on the management listener: every request by route, method and status
//! (`http_server_request_duration_seconds`, the OpenTelemetry HTTP server convention), the
//! calls to auth-service and books-service (`rpc_client_call_duration_seconds`, by the layer on
//! the channels), refused tokens by reason, rate-limit refusals, and the verifier's key-set age
//! and replica lag.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use observability::{CallMetrics, DURATION_BUCKETS, Registry, register};
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts};

pub struct Metrics {
    registry: Registry,
    requests: HistogramVec,
    token_rejections: IntCounterVec,
    rate_limited: IntCounter,
    pub calls: CallMetrics,
}

impl Metrics {
    /// # Errors
    /// A metric could not be registered (a programming error: names are constants).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = HistogramVec::new(
            HistogramOpts::new(
                "http_server_request_duration_seconds",
                "Duration of the HTTP requests served, by route, method and status.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &[
                "http_route",
                "http_request_method",
                "http_response_status_code",
            ],
        )?;
        let token_rejections = IntCounterVec::new(
            Opts::new(
                "bookstore_token_rejections_total",
                "Refused access tokens by reason.",
            ),
            &["reason"],
        )?;
        let rate_limited = IntCounter::new(
            "bookstore_rate_limited_total",
            "Requests to the auth routes refused by the per-address rate limit (429).",
        )?;
        Ok(Self {
            requests: register(&registry, requests)?,
            token_rejections: register(&registry, token_rejections)?,
            rate_limited: register(&registry, rate_limited)?,
            calls: CallMetrics::client(&registry, "gateway")?,
            registry,
        })
    }

    /// Where the rest of the gateway registers what it shows (the verifier's gauges).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn token_rejected(&self, reason: &str) {
        self.token_rejections.with_label_values(&[reason]).inc();
    }

    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }
}

/// Times every request under its route pattern (`/api/books/{id}`, never the raw path, so
/// label values stay few).
pub async fn middleware(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let metrics = request.app_data::<web::Data<Arc<Metrics>>>().cloned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.call(request).await?;
    if let Some(metrics) = metrics {
        // Known only once routing happened.
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let status = response.status().as_u16().to_string();
        metrics
            .requests
            .with_label_values(&[&route, &method, &status])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}
