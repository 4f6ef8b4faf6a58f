//! A password change through the gateway, raced by logins with the old password from other
//! clients, as an attacker who knows it would: no session they opened outlives the change, on
//! the gateway's replica as in auth-service.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::both_backends;
use tokio::task::JoinSet;

use crate::helpers::{PASSWORD, StackOptions, eventually, spawn_stack_with};

const NEW_PASSWORD: &str = "a completely new secret";

both_backends! {
    async fn logins_racing_a_password_change_keep_no_session_that_works(backend) {
        let options = StackOptions { bcrypt_cost: 8, ..StackOptions::default() };
        let stack = Arc::new(spawn_stack_with(backend, options).await);
        let owner = stack.user("victim").await;

        let changed = Arc::new(AtomicBool::new(false));
        let succeeded = Arc::new(AtomicUsize::new(0));
        let mut racers = JoinSet::new();
        // Each racer fails at most twice after the change (in flight, then its last try): four
        // stay below the throttle's 10 failures, so the owner's next login is not refused.
        for _ in 0..4 {
            let (stack, changed, succeeded) =
                (Arc::clone(&stack), Arc::clone(&changed), Arc::clone(&succeeded));
            racers.spawn(async move {
                let mut opened = Vec::new();
                loop {
                    let last = changed.load(Ordering::SeqCst);
                    let response = stack.login("victim", PASSWORD).await;
                    if response.status() == StatusCode::OK {
                        let body: Value = response.json().await.unwrap();
                        opened.push(body["access_token"].as_str().unwrap().to_owned());
                        succeeded.fetch_add(1, Ordering::SeqCst);
                    }
                    if last {
                        return opened;
                    }
                }
            });
        }
        // Every racer in its stride before the change (a fixed pause is too short on a loaded
        // machine), so that some logins straddle it.
        eventually("every racer has logged in once", || async {
            succeeded.load(Ordering::SeqCst) >= 4
        })
        .await;
        let change = stack
            .send_json(Method::PUT, "/api/me/password", Some(&owner.access), &json!({
                "current_password": PASSWORD, "new_password": NEW_PASSWORD
            }))
            .await;
        changed.store(true, Ordering::SeqCst);
        assert_eq!(change.status(), StatusCode::NO_CONTENT);
        let mut opened = Vec::new();
        while let Some(tokens) = racers.join_next().await {
            opened.extend(tokens.unwrap());
        }

        assert!(!opened.is_empty(), "no login got in before the change: no race ran");
        for token in &opened {
            eventually("a session opened with the old password is refused", || async {
                stack.get("/api/me", token).await.status() == StatusCode::UNAUTHORIZED
            })
            .await;
        }
        assert_eq!(stack.get("/api/me", &owner.access).await.status(), StatusCode::OK);
        let fresh = stack.login("victim", NEW_PASSWORD).await;
        assert_eq!(fresh.status(), StatusCode::OK);
        let fresh: Value = fresh.json().await.unwrap();
        let me = stack.get("/api/me", fresh["access_token"].as_str().unwrap()).await;
        assert_eq!(me.status(), StatusCode::OK);
    }
}
