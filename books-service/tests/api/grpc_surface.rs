use std::time::Duration;

use test_support::Backend;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::helpers::{channel, spawn_app};

#[tokio::test]
async fn health_reports_serving_once_the_keys_are_loaded() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut health = HealthClient::new(channel(app.books_addr).await);
    let request = || HealthCheckRequest {
        service: "bookstore.books.v1.BooksService".to_owned(),
    };

    let mut status = ServingStatus::Unknown;
    for _ in 0..50 {
        status = health.check(request()).await.unwrap().into_inner().status();
        if status == ServingStatus::Serving {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(status, ServingStatus::Serving);
}
