//! A real Prometheus (Debian's, as scripts/test provides it) scraping the three services'
//! management ports, loading deploy/observability/alerts.yaml, asked through its HTTP query API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use test_support::Backend;

use crate::register_and_login;
use crate::services::Services;

/// `TELEMETRY_PROMETHEUS`, else `prometheus` on PATH; `None` (after saying so) when there is
/// none and this is not CI, which never skips.
fn prometheus_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TELEMETRY_PROMETHEUS") {
        return Some(path.into());
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("prometheus"))
            .find(|candidate| candidate.is_file())
    });
    if on_path.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "prometheus not found, and CI never skips this test: run scripts/test (it installs Debian's prometheus package) or set TELEMETRY_PROMETHEUS"
        );
        eprintln!(
            "SKIPPED the Prometheus scrape test: no prometheus binary (scripts/test installs Debian's package as root; or set TELEMETRY_PROMETHEUS)"
        );
    }
    on_path
}

struct Prometheus {
    child: Child,
    url: String,
    client: Client,
}

impl Prometheus {
    fn start(binary: &Path, services: &Services, dir: &Path) -> Self {
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/observability/alerts.yaml");
        let jobs: Vec<Value> = services
            .all()
            .iter()
            .map(|service| {
                json!({"job_name": service.name, "static_configs": [{"targets": [service.management]}]})
            })
            .collect();
        // JSON is YAML: the configuration needs no YAML writer.
        let config = json!({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [rules],
            "scrape_configs": jobs,
        });
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config.to_string()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let prometheus = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            client: Client::new(),
        };
        prometheus.eventually("Prometheus is ready", || {
            prometheus
                .client
                .get(format!("{}/-/ready", prometheus.url))
                .send()
                .is_ok_and(|response| response.status() == StatusCode::OK)
        });
        prometheus
    }

    /// The `data` of an instant query, which must succeed.
    fn query(&self, promql: &str) -> Value {
        let response: Value = self
            .client
            .post(format!("{}/api/v1/query", self.url))
            .form(&[("query", promql)])
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(response["status"], "success", "{promql}: {response}");
        response["data"].clone()
    }

    /// The series an instant query returns.
    fn series(&self, promql: &str) -> Vec<Value> {
        let data = self.query(promql);
        assert_eq!(data["resultType"], "vector", "{promql}");
        data["result"].as_array().unwrap().clone()
    }

    fn eventually(&self, what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !condition() {
            assert!(Instant::now() < deadline, "never happened: {what}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Some of everything a dashboard shows: requests that succeed and fail, logins and books.
fn drive_traffic(api: &str, username: &str) {
    let client = Client::new();
    let token = register_and_login(&client, api, username);
    let wrong = client
        .post(format!("{api}/api/auth/login"))
        .json(&json!({"username": username, "password": "not the password"}))
        .send()
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let created = client
        .post(format!("{api}/api/books"))
        .bearer_auth(&token)
        .json(&json!({"title": "Dune", "author": "Frank Herbert"}))
        .send()
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    for path in ["/api/me", "/api/books"] {
        let response = client
            .get(format!("{api}{path}"))
            .bearer_auth(&token)
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let refused = client
        .get(format!("{api}/api/me"))
        .bearer_auth("forged")
        .send()
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

/// Every `expr` of the Grafana dashboard, with Grafana's `$__rate_interval` made concrete.
fn dashboard_queries() -> Vec<String> {
    fn collect(value: &Value, into: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(expr)) = map.get("expr") {
                    into.push(expr.replace("$__rate_interval", "1m"));
                }
                map.values().for_each(|value| collect(value, into));
            }
            Value::Array(values) => values.iter().for_each(|value| collect(value, into)),
            _ => {}
        }
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/observability/dashboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let mut queries = Vec::new();
    collect(&dashboard, &mut queries);
    assert!(
        queries.len() > 10,
        "the dashboard has {} queries",
        queries.len()
    );
    queries
}

#[test]
fn prometheus_scrapes_every_service_and_runs_every_dashboard_and_alert_query() {
    let Some(binary) = prometheus_binary() else {
        return;
    };
    let services = Services::start(Backend::Postgres, &[]);
    let dir = tempfile::tempdir().unwrap();
    let prometheus = Prometheus::start(&binary, &services, dir.path());
    drive_traffic(&services.api(), "scraped");
    prometheus.eventually("every service is scraped", || {
        prometheus.series("up == 1").len() == 3
            && !prometheus
                .series(r#"http_server_request_duration_seconds_count{job="gateway"}"#)
                .is_empty()
    });
    // A rate needs an increase between two scrapes: more of the same, now that Prometheus has
    // seen the series.
    drive_traffic(&services.api(), "scraped-again");
    prometheus.eventually("every service's request rate is known", || {
        [
            r#"rate(http_server_request_duration_seconds_count{job="gateway"}[1m]) > 0"#,
            r#"rate(rpc_server_call_duration_seconds_count{job="auth-service"}[1m]) > 0"#,
            r#"rate(rpc_server_call_duration_seconds_count{job="books-service"}[1m]) > 0"#,
        ]
        .iter()
        .all(|rate| !prometheus.series(rate).is_empty())
    });

    // Each service's request rate and duration, with the labels the dashboard groups by.
    let labelled = |promql: &str, labels: &[&str]| {
        let series = prometheus.series(promql);
        assert!(!series.is_empty(), "no series for {promql}");
        for one in &series {
            for label in labels {
                assert!(
                    one["metric"].get(*label).is_some(),
                    "{promql}: {one} lacks {label}"
                );
            }
        }
        series
    };
    let http = [
        "http_route",
        "http_request_method",
        "http_response_status_code",
    ];
    labelled(
        r#"rate(http_server_request_duration_seconds_count{job="gateway"}[1m])"#,
        &http,
    );
    labelled(
        r#"http_server_request_duration_seconds_bucket{job="gateway"}"#,
        &http,
    );
    let routes = labelled(
        r#"http_server_request_duration_seconds_count{job="gateway"}"#,
        &http,
    );
    assert!(
        routes
            .iter()
            .any(|series| series["metric"]["http_route"] == "/api/books/{id}"
                || series["metric"]["http_route"] == "/api/books")
    );
    let rpc = [
        "rpc_system",
        "rpc_service",
        "rpc_method",
        "rpc_grpc_status_code",
    ];
    for job in ["auth-service", "books-service"] {
        labelled(
            &format!(r#"rate(rpc_server_call_duration_seconds_count{{job="{job}"}}[1m])"#),
            &rpc,
        );
        labelled(
            &format!(r#"rpc_server_call_duration_seconds_bucket{{job="{job}"}}"#),
            &rpc,
        );
        labelled(
            &format!(r#"db_client_connection_count{{job="{job}"}}"#),
            &[],
        );
    }
    labelled(
        r#"rpc_client_call_duration_seconds_count{job="gateway"}"#,
        &rpc,
    );
    let logins = labelled(
        r#"bookstore_logins_total{job="auth-service"}"#,
        &["outcome"],
    );
    assert!(logins.len() >= 2, "a success and a failure: {logins:?}");

    // Every query of the dashboard runs; most have data after this traffic.
    let queries = dashboard_queries();
    let empty: Vec<_> = queries
        .iter()
        .filter(|query| {
            prometheus.query(query)["result"]
                .as_array()
                .is_some_and(Vec::is_empty)
        })
        .collect();
    println!(
        "dashboard: {} queries, {} without data yet: {empty:#?}",
        queries.len(),
        empty.len()
    );
    assert!(
        empty.len() * 2 < queries.len(),
        "most dashboard queries have data"
    );

    // Every alert rule loaded, was evaluated without error, and its query runs here too.
    prometheus.eventually("every rule was evaluated", || {
        rules(&prometheus).iter().all(|rule| {
            rule["lastEvaluation"]
                .as_str()
                .is_some_and(|at| !at.starts_with("0001"))
        })
    });
    let rules = rules(&prometheus);
    assert!(rules.len() > 5, "{} rules", rules.len());
    for rule in &rules {
        assert_eq!(rule["health"], "ok", "{rule}");
        prometheus.query(rule["query"].as_str().unwrap());
    }
    // A healthy stack fires nothing.
    assert!(
        prometheus
            .series(r#"ALERTS{alertstate="firing"}"#)
            .is_empty(),
        "alerts fire on a healthy stack"
    );
    drop(prometheus);
    services.stop();
}

fn rules(prometheus: &Prometheus) -> Vec<Value> {
    let response: Value = prometheus
        .client
        .get(format!("{}/api/v1/rules", prometheus.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    response["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_array().unwrap().clone())
        .collect()
}
