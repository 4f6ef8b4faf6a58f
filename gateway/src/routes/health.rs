//! Liveness, readiness, metrics and the documentation entry point.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use revocation::RevocationCheck;
use serde::Serialize;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use utoipa::ToSchema;

use crate::state::AppState;

/// How long one readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `not_ready`.
    pub status: &'static str,
    /// Each dependency: `up` or `down`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<&'static str, &'static str>,
}

/// The process is alive.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Alive", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health {
        status: "ok",
        checks: BTreeMap::new(),
    })
}

/// Whether this instance can serve: auth-service's keys are loaded and, unless revocation
/// fails open, the revocation store answers. auth-service and books-service are reported too,
/// but do not decide (each has its own readiness, and the gateway still serves the other's
/// routes when one is down).
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready; `checks` says why", body = Health),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<Arc<AppState>>) -> HttpResponse {
    let health = readiness(&state).await;
    if health.status == "ready" {
        HttpResponse::Ok().json(health)
    } else {
        HttpResponse::ServiceUnavailable().json(health)
    }
}

/// Whether this gateway can serve, and each dependency's state: what `/readyz` answers here
/// and on the management listener.
pub async fn readiness(state: &AppState) -> Health {
    let keys = state.authenticator.keys().age().is_some();
    let (redis, auth, books) = tokio::join!(
        async {
            tokio::time::timeout(PROBE_TIMEOUT, state.authenticator.revocations().ping())
                .await
                .is_ok_and(|answer| answer.is_ok())
        },
        serving(
            state.upstreams.auth_channel.clone(),
            "bookstore.auth.v1.AuthService"
        ),
        serving(
            state.upstreams.books_channel.clone(),
            "bookstore.books.v1.BooksService"
        ),
    );
    let ready = keys && (redis || state.revocation_fail_open);
    let up = |ok: bool| if ok { "up" } else { "down" };
    Health {
        status: if ready { "ready" } else { "not_ready" },
        checks: BTreeMap::from([
            ("keys", up(keys)),
            ("redis", up(redis)),
            ("auth_service", up(auth)),
            ("books_service", up(books)),
        ]),
    }
}

async fn serving(channel: tonic::transport::Channel, service: &str) -> bool {
    let mut client = HealthClient::new(channel);
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    tokio::time::timeout(PROBE_TIMEOUT, client.check(request))
        .await
        .is_ok_and(|answer| {
            answer.is_ok_and(|status| status.get_ref().status() == ServingStatus::Serving)
        })
}

/// The interactive API documentation (Swagger UI, served from this process).
#[utoipa::path(
    tag = "operations",
    responses((status = 308, description = "Redirect to the documentation page"))
)]
#[get("/docs")]
pub async fn docs() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}
