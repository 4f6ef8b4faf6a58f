//! Distributed traces: spans exported over OTLP/HTTP (protobuf) when an endpoint is configured,
//! and the W3C trace context (`traceparent`, `tracestate`) read from incoming requests and
//! written into outgoing ones.
//!
//! Export is off unless `telemetry.otlp_endpoint` or the standard
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and always off
//! with `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. While it is off no OpenTelemetry
//! layer is installed and [`enabled`] tells the request paths to skip the propagation work, so
//! that the hot path pays nothing for it.
//!
//! Several services may share a process (the one-process launcher): each still reports as
//! itself. The spans that begin a service's work (a served request, a call it makes, its
//! database work) carry that service's name in the field [`SERVICE`]; the spans beneath them
//! inherit it from their parent. [`ByService`] sends each span to an exporter whose resource
//! names that service, and drops the field, which the resource already says.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{Span as _, SpanId, TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, Span, SpanData, SpanProcessor,
};
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};

/// The span field naming the service whose work a span begins (see the module's description).
pub const SERVICE: &str = "service.name";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported: when not, there is no trace context to read or to pass on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The trace settings a service was given (`telemetry.*`); what they leave unset, the standard
/// OpenTelemetry environment variables decide.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportSettings<'a> {
    /// The collector's base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` is appended).
    pub endpoint: Option<&'a str>,
    /// The share of new traces recorded, 0 to 1 (default 1).
    pub sampling_ratio: Option<f64>,
    /// Whether a request's sampled flag decides for the spans it causes (default true).
    pub parent_based: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("telemetry.otlp_endpoint / OTEL_EXPORTER_OTLP_*ENDPOINT: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("OTEL_TRACES_EXPORTER={0}: only `otlp` (or `none`) is supported")]
    UnsupportedExporter(String),
}

/// The running span export: flush it with [`Traces::shutdown`] before the process exits.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Starts exporting the spans of `services` (the first is the one unmarked spans belong
    /// to), or returns `None` when export is off. `env` reads an environment variable.
    ///
    /// # Errors
    /// The exporter cannot be built (a malformed endpoint), or another exporter was asked for.
    pub fn start(
        settings: &ExportSettings<'_>,
        services: &[&'static str],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, TraceError> {
        let set = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        if set("OTEL_SDK_DISABLED").is_some_and(|value| value.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        match set("OTEL_TRACES_EXPORTER").map(|value| value.trim().to_ascii_lowercase()) {
            Some(exporter) if exporter == "none" => return Ok(None),
            Some(exporter) if exporter != "otlp" => {
                return Err(TraceError::UnsupportedExporter(exporter));
            }
            _ => {}
        }
        let endpoint = settings
            .endpoint
            .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')));
        if endpoint.is_none()
            && set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
            && set("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
        {
            return Ok(None);
        }

        // With one service in the process, OTEL_SERVICE_NAME may rename it; several keep
        // their own names, or they could not be told apart.
        let renamed = set("OTEL_SERVICE_NAME").filter(|_| services.len() == 1);
        let mut routes = Vec::with_capacity(services.len());
        for &service in services {
            let mut exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary);
            if let Some(endpoint) = &endpoint {
                exporter = exporter.with_endpoint(endpoint.clone());
            }
            let name = renamed.clone().unwrap_or_else(|| service.to_owned());
            routes.push(Route {
                marker: service,
                name,
                processor: BatchSpanProcessor::builder(exporter.build()?).build(),
            });
        }
        // The SDK's default resource already reads OTEL_RESOURCE_ATTRIBUTES; each route then
        // names its service (ByService::set_resource).
        let mut provider = SdkTracerProvider::builder().with_span_processor(ByService::new(routes));
        if settings.sampling_ratio.is_some() || settings.parent_based.is_some() {
            provider = provider.with_sampler(sampler(settings));
        }
        ENABLED.store(true, Ordering::Relaxed);
        Ok(Some(Self {
            provider: provider.build(),
        }))
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans.
    pub fn layer<S>(&self) -> OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("bookstore"))
            .with_threads(false)
    }

    /// Exports what is still buffered and stops; waits at most a few seconds for the collector.
    pub fn shutdown(self) {
        ENABLED.store(false, Ordering::Relaxed);
        if let Err(error) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            tracing::warn!(%error, "traces not all exported at shutdown");
        }
    }
}

/// Without settings the SDK's own choice holds: `OTEL_TRACES_SAMPLER` / `_ARG`, else every trace
/// whose parent is sampled (or that has none).
fn sampler(settings: &ExportSettings<'_>) -> Sampler {
    let ratio = Sampler::TraceIdRatioBased(settings.sampling_ratio.unwrap_or(1.0));
    if settings.parent_based.unwrap_or(true) {
        Sampler::ParentBased(Box::new(ratio))
    } else {
        ratio
    }
}

/// The span of a call to a database (`system`: `postgresql`, `sqlite`, `redis`) made for the
/// request being served, named `operation`. None while no span is exported, or outside any
/// request: work in the background has no trace to join.
pub fn database_span(system: &'static str, operation: &'static str) -> tracing::Span {
    if enabled() && !tracing::Span::current().is_none() {
        tracing::info_span!(
            "db",
            otel.name = operation,
            otel.kind = "client",
            db.system.name = system,
        )
    } else {
        tracing::Span::none()
    }
}

/// Makes the trace context of `headers` (an incoming request's) the parent of `span`. A
/// request without one, or with a malformed one, starts a new trace.
pub fn continue_trace(span: &tracing::Span, headers: &impl Extractor) {
    let parent = TraceContextPropagator::new().extract(headers);
    if parent.span().span_context().is_valid() {
        // Fails only for a span that is disabled or already started: then it has no parent to set.
        let _ = span.set_parent(parent);
    }
}

/// As [`continue_trace`], from the two W3C headers of a server whose header types are not
/// `http`'s (actix-web's).
pub fn continue_trace_from(
    span: &tracing::Span,
    traceparent: Option<&str>,
    tracestate: Option<&str>,
) {
    continue_trace(
        span,
        &W3cHeaders {
            traceparent,
            tracestate,
        },
    );
}

struct W3cHeaders<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

impl Extractor for W3cHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent,
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// Names `span` once what names it is known (an HTTP route, after routing): `otel.name`
/// recorded that late no longer reaches a span that has started.
pub fn rename(span: &tracing::Span, name: String) {
    span.context().span().update_name(name);
}

/// Writes the trace context of `span` into `headers` (an outgoing request's).
pub fn propagate(span: &tracing::Span, headers: &mut http::HeaderMap) {
    TraceContextPropagator::new().inject_context(&span.context(), &mut HeaderInjector(headers));
}

/// An incoming `http` request's headers, read as a trace context carrier.
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[derive(Debug)]
struct Route {
    /// The value of [`SERVICE`] that marks this service's spans.
    marker: &'static str,
    /// The `service.name` it reports.
    name: String,
    processor: BatchSpanProcessor,
}

/// Sends each span to the exporter of the service whose work it is: the one its [`SERVICE`]
/// field names, else its parent's (a span of this process), else the first.
#[derive(Debug)]
struct ByService {
    routes: Vec<Route>,
    /// The route of every span started and not yet ended, for its children to inherit.
    open: Mutex<HashMap<SpanId, usize>>,
}

impl ByService {
    fn new(routes: Vec<Route>) -> Self {
        Self {
            routes,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn marked(&self, span: &Span) -> Option<usize> {
        let data = span.exported_data()?;
        let marker = data
            .attributes
            .iter()
            .find(|attribute| attribute.key.as_str() == SERVICE)?
            .value
            .as_str();
        self.routes
            .iter()
            .position(|route| route.marker == marker.as_ref())
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<SpanId, usize>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SpanProcessor for ByService {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        if self.routes.len() == 1 {
            return;
        }
        let parent = cx.span().span_context().clone();
        let route = self.marked(span).unwrap_or_else(|| {
            let inherited = (parent.is_valid() && !parent.is_remote())
                .then(|| self.open().get(&parent.span_id()).copied())
                .flatten();
            inherited.unwrap_or(0)
        });
        self.open().insert(span.span_context().span_id(), route);
    }

    fn on_end(&self, mut span: SpanData) {
        let route = if self.routes.len() == 1 {
            0
        } else {
            self.open()
                .remove(&span.span_context.span_id())
                .unwrap_or(0)
        };
        span.attributes
            .retain(|attribute| attribute.key.as_str() != SERVICE);
        if let Some(route) = self.routes.get(route) {
            route.processor.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.routes
            .iter()
            .try_for_each(|route| route.processor.force_flush())
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let mut outcome = Ok(());
        for route in &self.routes {
            if let Err(error) = route.processor.shutdown_with_timeout(timeout) {
                outcome = Err(error);
            }
        }
        outcome
    }

    fn set_resource(&mut self, resource: &Resource) {
        for route in &mut self.routes {
            let named = Resource::builder_empty()
                .with_attributes(
                    resource
                        .iter()
                        .map(|(key, value)| KeyValue::new(key.clone(), value.clone())),
                )
                .with_service_name(route.name.clone())
                .build();
            route.processor.set_resource(&named);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn start(settings: ExportSettings<'_>, env: &[(&str, &str)]) -> Option<Traces> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        Traces::start(&settings, &["gateway"], |name| env.get(name).cloned()).unwrap()
    }

    #[test]
    fn export_is_off_without_an_endpoint_and_whenever_the_sdk_is_disabled() {
        let endpoint = ExportSettings {
            endpoint: Some("http://127.0.0.1:4318"),
            ..ExportSettings::default()
        };
        assert!(start(ExportSettings::default(), &[]).is_none());
        assert!(
            start(
                ExportSettings::default(),
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]
            )
            .is_none()
        );
        assert!(start(endpoint, &[("OTEL_SDK_DISABLED", "TRUE")]).is_none());
        assert!(start(endpoint, &[("OTEL_TRACES_EXPORTER", "none")]).is_none());

        for on in [
            start(endpoint, &[]),
            start(endpoint, &[("OTEL_SDK_DISABLED", "false")]),
            start(
                ExportSettings::default(),
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")],
            ),
            start(
                ExportSettings::default(),
                &[(
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://127.0.0.1:4318/v1/traces",
                )],
            ),
        ] {
            on.unwrap().shutdown();
        }
    }

    #[test]
    fn another_exporter_or_a_malformed_endpoint_is_refused() {
        let endpoint = ExportSettings {
            endpoint: Some("http://127.0.0.1:4318"),
            ..ExportSettings::default()
        };
        let refused = |settings, env: HashMap<&str, &str>| {
            Traces::start(&settings, &["gateway"], |name| {
                env.get(name).map(|value| (*value).to_owned())
            })
            .err()
            .unwrap()
            .to_string()
        };
        assert!(
            refused(
                endpoint,
                HashMap::from([("OTEL_TRACES_EXPORTER", "zipkin")])
            )
            .contains("zipkin")
        );
        let malformed = ExportSettings {
            endpoint: Some("not a url"),
            ..ExportSettings::default()
        };
        assert!(refused(malformed, HashMap::new()).starts_with("telemetry.otlp_endpoint"));
    }

    #[test]
    fn the_sampler_is_parent_based_unless_told_otherwise() {
        let ratio = |parent_based| {
            format!(
                "{:?}",
                sampler(&ExportSettings {
                    sampling_ratio: Some(0.25),
                    parent_based,
                    ..ExportSettings::default()
                })
            )
        };
        assert!(ratio(None).starts_with("ParentBased(TraceIdRatioBased(0.25"));
        assert!(ratio(Some(false)).starts_with("TraceIdRatioBased(0.25"));
    }

    #[test]
    fn a_traceparent_is_continued_and_passed_on() {
        let headers = http::HeaderMap::from_iter([(
            http::HeaderName::from_static("traceparent"),
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        )]);
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        let parent = parent.span().span_context().clone();
        assert!(parent.is_valid() && parent.is_remote());
        assert_eq!(
            parent.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );

        let mut outgoing = http::HeaderMap::new();
        TraceContextPropagator::new().inject_context(
            &Context::new().with_remote_span_context(parent),
            &mut HeaderInjector(&mut outgoing),
        );
        assert_eq!(
            outgoing["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }
}
