use proto::auth::v1::auth_service_client::AuthServiceClient;
use test_support::Backend;
use tokio_stream::StreamExt;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_reports_serving_for_the_server_and_the_auth_service() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut health = HealthClient::new(app.channel().await);

    for service in ["", "bookstore.auth.v1.AuthService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
}

#[tokio::test]
async fn reflection_lists_the_auth_service_and_health_only() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut reflection = ServerReflectionClient::new(app.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };

    let mut responses = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();

    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"bookstore.auth.v1.AuthService".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains("BooksService")),
        "{names:?}"
    );
}

#[tokio::test]
async fn the_jwks_publishes_one_ed25519_signing_key_by_default() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut client = AuthServiceClient::connect(format!("http://{}", app.addr))
        .await
        .unwrap();

    let keys = client
        .get_jwks(proto::auth::v1::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;

    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(
        (
            key.kty.as_str(),
            key.crv.as_str(),
            key.alg.as_str(),
            key.r#use.as_str()
        ),
        ("OKP", "Ed25519", "EdDSA", "sig")
    );
    assert_eq!(key.kid, app.active_key().kid());
    assert!(
        key.n.is_empty() && key.y.is_empty(),
        "no private or foreign members"
    );
}
