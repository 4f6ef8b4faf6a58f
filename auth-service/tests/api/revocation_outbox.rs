use test_support::{Backend, ChaosProxy, both_backends};

use crate::helpers::{TestOptions, claims_of, spawn_app, spawn_app_with};

both_backends! {
    async fn a_revocation_made_while_redis_is_unreachable_arrives_once_it_is_back(backend) {
        let proxy = ChaosProxy::start(test_support::redis_addr()).await;
        let options = TestOptions { redis_url: Some(format!("redis://{}", proxy.addr())), ..TestOptions::default() };
        let app = spawn_app_with(backend, options).await;
        let login = app.user("offline").await;

        proxy.cut();
        app.logout(&login.access).await.unwrap();
        assert!(!app.in_redis("session", &login.session_id).await, "Redis was unreachable");
        proxy.restore();

        assert!(app.eventually_in_redis("session", &login.session_id).await);
        assert!(app.in_redis("token", &claims_of(&login.access).jti).await);
    }
}

#[tokio::test]
async fn a_redis_that_lost_its_data_is_seeded_again_from_the_database() {
    let app = spawn_app(Backend::Postgres).await;
    let login = app.user("amnesia").await;
    app.logout(&login.access).await.unwrap();
    assert!(app.in_redis("session", &login.session_id).await);

    app.wipe_redis().await;

    assert!(app.eventually_in_redis("session", &login.session_id).await);
}
