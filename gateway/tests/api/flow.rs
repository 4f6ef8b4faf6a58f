use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::both_backends;

use crate::helpers::{PASSWORD, eventually, problem, spawn_stack};

both_backends! {
    async fn the_whole_journey_of_a_reader(backend) {
        let stack = spawn_stack(backend).await;

        // Register, then log in with each credential style.
        let first = stack.user("reader").await;
        let json_login = stack.logged_in("reader").await;
        let form = stack.request(Method::POST, "/api/auth/login", None)
            .form(&[("username", "reader"), ("password", PASSWORD)])
            .send().await.unwrap();
        assert_eq!(form.status(), StatusCode::OK);
        assert_eq!(form.headers()["cache-control"], "no-store");
        let basic = stack.request(Method::POST, "/api/auth/login", None)
            .basic_auth("reader@example.org", Some(PASSWORD))
            .send().await.unwrap();
        assert_eq!(basic.status(), StatusCode::OK);
        let basic: Value = basic.json().await.unwrap();
        assert_eq!(basic["token_type"], "Bearer");
        assert_eq!(basic["expires_in"], 900);
        let token = json_login.access.as_str();

        // Books: create, list, read, change, delete.
        let created = stack.send_json(Method::POST, "/api/books", Some(token), &json!({
            "title": "Dune", "author": "Frank Herbert", "isbn": "0-441-17271-7", "price_cents": 999
        })).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        assert_eq!(created.headers()["etag"], "\"1\"");
        let location = created.headers()["location"].to_str().unwrap().to_owned();
        let book: Value = created.json().await.unwrap();
        assert_eq!(location, format!("/api/books/{}", book["id"].as_str().unwrap()));
        assert_eq!(book["isbn"], "9780441172719");

        let list: Value = stack.get("/api/books?limit=10", token).await.json().await.unwrap();
        assert_eq!(list["books"].as_array().unwrap().len(), 1);
        assert_eq!(list["next_cursor"], Value::Null);

        let fetched = stack.get(&location, token).await;
        assert_eq!(fetched.status(), StatusCode::OK);
        assert_eq!(fetched.headers()["etag"], "\"1\"");

        let patched = stack.request(Method::PATCH, &location, Some(token))
            .header("if-match", "\"1\"")
            .json(&json!({"price_cents": 1299, "isbn": null}))
            .send().await.unwrap();
        assert_eq!(patched.status(), StatusCode::OK);
        assert_eq!(patched.headers()["etag"], "\"2\"");
        let patched: Value = patched.json().await.unwrap();
        assert_eq!((patched["price_cents"].clone(), patched["isbn"].clone(), patched["title"].clone()), (json!(1299), Value::Null, json!("Dune")));

        let replaced = stack.send_json(Method::PUT, &location, Some(token), &json!({"title": "Dune Messiah", "author": "Frank Herbert"})).await;
        assert_eq!(replaced.status(), StatusCode::OK);
        let replaced: Value = replaced.json().await.unwrap();
        assert_eq!((replaced["title"].clone(), replaced["price_cents"].clone(), replaced["version"].clone()), (json!("Dune Messiah"), json!(0), json!(3)));

        let deleted = stack.request(Method::DELETE, &location, Some(token)).send().await.unwrap();
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        problem(stack.get(&location, token).await, StatusCode::NOT_FOUND).await;

        // Refresh, then log out: the old access token dies at once, the old refresh token too.
        let refreshed = stack.send_json(Method::POST, "/api/auth/refresh", None, &json!({"refresh_token": json_login.refresh})).await;
        assert_eq!(refreshed.status(), StatusCode::OK);
        let refreshed: Value = refreshed.json().await.unwrap();
        let new_access = refreshed["access_token"].as_str().unwrap();
        assert_eq!(stack.get("/api/me", new_access).await.status(), StatusCode::OK);

        let logout = stack.request(Method::POST, "/api/auth/logout", Some(new_access)).send().await.unwrap();
        assert_eq!(logout.status(), StatusCode::NO_CONTENT);
        problem(stack.get("/api/me", new_access).await, StatusCode::UNAUTHORIZED).await;
        eventually("the gateway refuses the token as revoked", || stack.denies_as_revoked(&stack.gateway, new_access)).await;
        let refresh_again = stack.request(Method::POST, "/api/auth/refresh", Some(refreshed["refresh_token"].as_str().unwrap())).send().await.unwrap();
        problem(refresh_again, StatusCode::UNAUTHORIZED).await;
        let reused = stack.send_json(Method::POST, "/api/auth/refresh", None, &json!({"refresh_token": json_login.refresh})).await;
        problem(reused, StatusCode::UNAUTHORIZED).await;

        // The first session is untouched by all this.
        assert_eq!(stack.get("/api/me", &first.access).await.status(), StatusCode::OK);
    }

    async fn sessions_are_listed_and_revoked_one_by_one_or_together(backend) {
        let stack = spawn_stack(backend).await;
        let laptop = stack.user("owner").await;
        let phone = stack.logged_in("owner").await;
        let tablet = stack.logged_in("owner").await;

        let listed: Value = stack.get("/api/auth/sessions", &laptop.access).await.json().await.unwrap();
        let sessions = listed["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 3);
        assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
        for field in ["id", "created_at", "last_used_at", "expires_at", "user_agent", "ip"] {
            assert!(sessions[0].get(field).is_some(), "{field}");
        }
        let phone_id = sessions.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();

        let deleted = stack.request(Method::DELETE, &format!("/api/auth/sessions/{phone_id}"), Some(&laptop.access)).send().await.unwrap();
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        let again = stack.request(Method::DELETE, &format!("/api/auth/sessions/{phone_id}"), Some(&laptop.access)).send().await.unwrap();
        problem(again, StatusCode::NOT_FOUND).await;

        let remaining: Value = stack.get("/api/auth/sessions", &laptop.access).await.json().await.unwrap();
        let ids: Vec<String> = remaining["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
        let revoked = stack.send_json(Method::POST, "/api/auth/sessions/revoke", Some(&laptop.access), &json!({"session_ids": ids})).await;
        assert_eq!(revoked.json::<Value>().await.unwrap()["revoked"], 2);

        for login in [&laptop, &phone, &tablet] {
            problem(stack.get("/api/me", &login.access).await, StatusCode::UNAUTHORIZED).await;
        }
    }

    async fn a_password_change_ends_the_other_sessions(backend) {
        let stack = spawn_stack(backend).await;
        let here = stack.user("mover").await;
        let there = stack.logged_in("mover").await;

        let changed = stack.send_json(Method::PUT, "/api/me/password", Some(&here.access), &json!({
            "current_password": PASSWORD, "new_password": "a completely new secret"
        })).await;

        assert_eq!(changed.status(), StatusCode::NO_CONTENT);
        assert_eq!(stack.get("/api/me", &here.access).await.status(), StatusCode::OK);
        problem(stack.get("/api/me", &there.access).await, StatusCode::UNAUTHORIZED).await;
        problem(stack.login("mover", PASSWORD).await, StatusCode::UNAUTHORIZED).await;
        let wrong = stack.send_json(Method::PUT, "/api/me/password", Some(&here.access), &json!({
            "current_password": "not it", "new_password": "another new secret"
        })).await;
        let body = problem(wrong, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(body["errors"]["current_password"].is_array(), "{body}");
    }

    async fn an_admin_deactivation_fails_the_users_live_token(backend) {
        let stack = spawn_stack(backend).await;
        let admin = stack.admin("root").await;
        let user = stack.user("employee").await;
        let me: Value = stack.get("/api/me", &user.access).await.json().await.unwrap();
        let id = me["id"].as_str().unwrap();

        let users: Value = stack.get("/api/admin/users?limit=10", &admin.access).await.json().await.unwrap();
        assert_eq!(users["users"].as_array().unwrap().len(), 2);
        assert!(users["users"][0].get("password_hash").is_none());
        let updated = stack.send_json(Method::PATCH, &format!("/api/admin/users/{id}"), Some(&admin.access), &json!({"is_active": false})).await;
        assert_eq!(updated.status(), StatusCode::OK);
        assert_eq!(updated.json::<Value>().await.unwrap()["is_active"], false);

        eventually("the live token refused", || stack.denies_as_revoked(&stack.gateway, &user.access)).await;
        problem(stack.login("employee", PASSWORD).await, StatusCode::UNAUTHORIZED).await;
        problem(stack.get("/api/admin/users", &stack.user("plain").await.access).await, StatusCode::FORBIDDEN).await;
        let myself = stack.send_json(Method::PATCH, &format!("/api/admin/users/{}", me_id(&stack, &admin.access).await), Some(&admin.access), &json!({"is_active": false})).await;
        problem(myself, StatusCode::CONFLICT).await;
    }
}

async fn me_id(stack: &crate::helpers::Stack, token: &str) -> String {
    let me: Value = stack.get("/api/me", token).await.json().await.unwrap();
    me["id"].as_str().unwrap().to_owned()
}
