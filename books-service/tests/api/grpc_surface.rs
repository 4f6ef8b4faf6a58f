use test_support::Backend;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::helpers::{channel, spawn_app};

#[tokio::test]
async fn health_reports_serving_once_the_keys_are_loaded() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut health = HealthClient::new(channel(app.books_addr).await);

    let status = health
        .check(HealthCheckRequest {
            service: "bookstore.books.v1.BooksService".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status();

    assert_eq!(status, ServingStatus::Serving);
}
