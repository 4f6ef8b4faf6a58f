//! One trace per request across the services: the gateway continues the caller's
//! `traceparent`, each service's server span hangs under the gateway's client span, database
//! spans under those, and every span reports the service it belongs to.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use test_support::Backend;

use crate::launched::{ANY_FREE_PORTS, Launched, bookstore};
use crate::otlp::{Received, Receiver};
use crate::register_and_login;
use crate::services::Services;

const SERVICES: [&str; 3] = ["auth-service", "books-service", "gateway"];

/// A `traceparent` of a sampled span of a new trace: (header, trace id, span id).
fn traceparent() -> (String, String, String) {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    (format!("00-{trace}-{span}-01"), trace, span)
}

/// GET `path` with `traceparent` when given: the response's request id.
fn get(client: &Client, api: &str, path: &str, token: &str, traceparent: Option<&str>) -> String {
    let mut request = client.get(format!("{api}{path}")).bearer_auth(token);
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let response = request.send().unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The spans of one trace, by span id.
struct Trace<'a> {
    spans: HashMap<String, &'a Received>,
}

impl<'a> Trace<'a> {
    fn of(received: &'a [Received], trace_id: &str) -> Self {
        let spans: HashMap<_, _> = received
            .iter()
            .filter(|span| span.trace_id() == trace_id)
            .map(|span| (span.span_id(), span))
            .collect();
        assert!(!spans.is_empty(), "no span of trace {trace_id}");
        Self { spans }
    }

    fn with(&self, service: &str, kind: SpanKind) -> Vec<&'a Received> {
        self.spans
            .values()
            .filter(|span| span.service == service && span.span.kind == kind as i32)
            .copied()
            .collect()
    }

    fn parent(&self, span: &Received) -> Option<&'a Received> {
        self.spans.get(&span.parent_span_id()).copied()
    }

    fn ancestors(&self, span: &'a Received) -> Vec<&'a Received> {
        let mut chain = Vec::new();
        let mut current = span;
        while let Some(parent) = self.parent(current) {
            chain.push(parent);
            current = parent;
        }
        chain
    }

    /// Checks the shape every request's trace has (its database spans `database`'s), and
    /// returns the gateway's server span.
    fn assert_shape(
        &self,
        sent_span: &str,
        (upstream, database): (&str, &str),
        request_id: &str,
    ) -> &'a Received {
        // One tree, rooted at the span the caller sent: nothing of another trace mixed in.
        let root = self.with("gateway", SpanKind::Server);
        assert_eq!(root.len(), 1, "one gateway server span: {root:#?}");
        let root = root[0];
        assert_eq!(
            root.parent_span_id(),
            sent_span,
            "the gateway continues the caller's span"
        );
        assert_eq!(root.attribute("request_id").as_deref(), Some(request_id));
        for span in self.spans.values() {
            assert!(
                span.span_id() == root.span_id()
                    || self
                        .ancestors(span)
                        .iter()
                        .any(|ancestor| ancestor.span_id() == root.span_id()),
                "{span:#?} is not under the gateway's server span"
            );
        }

        let served = self.with(upstream, SpanKind::Server);
        assert!(!served.is_empty(), "no {upstream} server span");
        for span in self
            .spans
            .values()
            .filter(|span| span.span.kind == SpanKind::Server as i32)
        {
            if span.service == "gateway" {
                continue;
            }
            let parent = self
                .parent(span)
                .expect("a server span's parent was exported");
            assert_eq!(
                (parent.service.as_str(), parent.span.kind),
                ("gateway", SpanKind::Client as i32),
                "{span:#?} is not under a gateway client span"
            );
            assert_eq!(span.attribute("request_id").as_deref(), Some(request_id));
        }

        let queries: Vec<_> = self
            .spans
            .values()
            .filter(|span| span.attribute("db.system.name").is_some())
            .collect();
        assert!(
            queries.iter().any(|query| query.service == upstream),
            "no database span of {upstream}"
        );
        for query in queries {
            assert_eq!(query.attribute("db.system.name").as_deref(), Some(database));
            assert!(
                self.ancestors(query)
                    .iter()
                    .any(|span| span.span.kind == SpanKind::Server as i32
                        && span.service == query.service
                        && span.service != "gateway"),
                "{query:#?} is not under a server span of its service"
            );
        }
        root
    }
}

fn services_named(received: &[Received]) -> BTreeSet<&str> {
    received.iter().map(|span| span.service.as_str()).collect()
}

#[test]
fn each_request_is_one_trace_across_the_three_services_on_postgres() {
    one_trace_per_request(Backend::Postgres, "postgresql");
}

#[test]
fn each_request_is_one_trace_across_the_three_services_on_sqlite() {
    one_trace_per_request(Backend::Sqlite, "sqlite");
}

fn one_trace_per_request(backend: Backend, database: &str) {
    let receiver = Receiver::start();
    let services = Services::start(
        backend,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.clone())],
    );
    let (client, api) = (Client::new(), services.api());
    let token = register_and_login(&client, &api, "tracer");

    let (me_header, me_trace, me_span) = traceparent();
    let me_id = get(&client, &api, "/api/me", &token, Some(&me_header));
    let (books_header, books_trace, books_span) = traceparent();
    let books_id = get(&client, &api, "/api/books", &token, Some(&books_header));
    let untraced_id = get(&client, &api, "/api/me", &token, None);
    // Spans are exported in batches; stopping flushes what is left.
    services.stop();

    let received = receiver.spans();
    assert_eq!(services_named(&received), BTreeSet::from(SERVICES));

    let me = Trace::of(&received, &me_trace);
    let root = me.assert_shape(&me_span, ("auth-service", database), &me_id);
    assert_eq!(root.span.name, "GET /api/me");
    assert_eq!(root.attribute("http.route").as_deref(), Some("/api/me"));
    assert_eq!(
        root.attribute("http.response.status_code").as_deref(),
        Some("200")
    );

    let books = Trace::of(&received, &books_trace);
    let root = books.assert_shape(&books_span, ("books-service", database), &books_id);
    assert_eq!(root.span.name, "GET /api/books");

    // Without a traceparent the gateway starts a trace of its own.
    let untraced: Vec<_> = received
        .iter()
        .filter(|span| span.attribute("request_id").as_deref() == Some(untraced_id.as_str()))
        .filter(|span| span.service == "gateway" && span.span.kind == SpanKind::Server as i32)
        .collect();
    assert_eq!(untraced.len(), 1);
    let untraced = untraced[0];
    assert!(
        untraced.span.parent_span_id.is_empty(),
        "{untraced:#?} has a parent"
    );
    assert!(![me_trace, books_trace].contains(&untraced.trace_id()));
    Trace::of(&received, &untraced.trace_id()).assert_shape(
        "",
        ("auth-service", database),
        &untraced_id,
    );
}

#[test]
fn in_the_one_process_launcher_each_service_still_reports_as_itself() {
    let receiver = Receiver::start();
    let data = tempfile::tempdir().unwrap();
    let mut command = bookstore(data.path());
    command.args(ANY_FREE_PORTS);
    for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("OTEL_")) {
        command.env_remove(key);
    }
    command.env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url);
    let launched = Launched::spawn(command);
    let api = launched.api.clone();

    let client = Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{api}/readyz"))
        .send()
        .map(|r| r.status())
        .ok()
        != Some(StatusCode::OK)
    {
        assert!(Instant::now() < deadline, "the launcher never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let token = register_and_login(&client, &api, "launched");
    let (me_header, me_trace, me_span) = traceparent();
    let me_id = get(&client, &api, "/api/me", &token, Some(&me_header));
    let (books_header, books_trace, books_span) = traceparent();
    let books_id = get(&client, &api, "/api/books", &token, Some(&books_header));
    // Stopping flushes the spans left.
    launched.stop();

    let received = receiver.spans();
    assert_eq!(services_named(&received), BTreeSet::from(SERVICES));
    let sqlite = ("auth-service", "sqlite");
    Trace::of(&received, &me_trace).assert_shape(&me_span, sqlite, &me_id);
    let sqlite = ("books-service", "sqlite");
    Trace::of(&received, &books_trace).assert_shape(&books_span, sqlite, &books_id);
}
