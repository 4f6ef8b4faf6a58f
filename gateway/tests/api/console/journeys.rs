//! What people do with the console, in a real browser, each step asserted on what the page
//! shows; then the checks only a browser can make: the cookies scripts can see, a form posted
//! from another site, the CSP violations the browser reports, accessibility (axe-core) and
//! the screenshots at phone and desktop widths. On SQLite, the embedded default a newcomer
//! runs; the services behind are tested on both backends elsewhere.
//!
//! Ignored in a plain `cargo test`: `scripts/test` provides the browser and runs them one at a
//! time with their output shown.

use std::time::Instant;

use fantoccini::Locator;
use reqwest::{Method, StatusCode};
use serde_json::json;
use test_support::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::browser::{Browser, Profile};
use super::titles;
use crate::helpers::{PASSWORD, Stack, spawn_stack};

async fn stack() -> Stack {
    spawn_stack(Backend::Sqlite).await
}

/// Signs in through the sign-in page, which ends on the books page.
async fn sign_in(page: &Profile, username: &str, password: &str) {
    page.goto("/ui/sign-in").await;
    page.fill("username", username).await;
    page.fill("password", password).await;
    page.press("Sign in").await;
}

async fn book_rows(page: &Profile) -> usize {
    page.client
        .find_all(Locator::Css("tbody tr"))
        .await
        .unwrap()
        .len()
}

fn done(what: &str, started: Instant) {
    eprintln!(
        "console: {what} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a suite of scripts/test, which provides the browser: run with --ignored"]
async fn a_reader_keeps_books_from_sign_up_to_sign_out() {
    let Some(mut browser) = Browser::start() else {
        return;
    };
    let started = Instant::now();
    let stack = stack().await;
    let me = browser.profile(&stack.gateway).await;

    // Register, sign out, sign in.
    me.goto("/").await;
    assert_eq!(me.path().await, "/ui/sign-in?next=%2Fui%2Fbooks");
    me.follow("Create one").await;
    me.fill("username", "reader").await;
    me.fill("email", "reader@example.org").await;
    me.fill("password", PASSWORD).await;
    me.press("Create account").await;
    me.wait_for_heading("Your books").await;
    assert!(me.text().await.contains("No books yet"));
    me.press("Sign out").await;
    me.wait_for_heading("Sign in").await;
    assert!(me.text().await.contains("You are signed out."));
    sign_in(&me, "reader", PASSWORD).await;
    me.wait_for_heading("Your books").await;

    // Three books, then a search that finds one of them.
    for (title, author) in [
        ("Dune", "Frank Herbert"),
        ("Neuromancer", "William Gibson"),
        ("Hyperion", "Dan Simmons"),
    ] {
        me.follow("Add a book").await;
        me.fill("title", title).await;
        me.fill("author", author).await;
        me.fill("price_cents", "999").await;
        me.press("Save").await;
        assert!(me.text().await.contains("The book was added."));
    }
    me.fill("q", "neuro").await;
    me.press("Search").await;
    let found = me.text().await;
    assert!(
        found.contains("Neuromancer") && !found.contains("Dune"),
        "{found}"
    );

    // 25 books, 10 a page, forwards and back.
    let token = stack.logged_in("reader").await.access;
    for n in 0..22 {
        let created = stack
            .send_json(
                Method::POST,
                "/api/books",
                Some(&token),
                &json!({"title": format!("Volume {n:02}"), "author": "Anonymous"}),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    me.goto("/ui/books").await;
    assert_eq!(book_rows(&me).await, 10);
    me.follow("Next page").await;
    assert_eq!(book_rows(&me).await, 10);
    let second = me.text().await;
    me.follow("Next page").await;
    assert_eq!(book_rows(&me).await, 5);
    assert!(
        me.text().await.contains("Dune"),
        "the oldest book is on the last page"
    );
    assert!(me.client.find(Locator::Css("a[rel=next]")).await.is_err());
    me.follow("Previous page").await;
    assert_eq!(me.text().await, second);

    // An edit, then a second session edits the same book; the first sees the conflict.
    me.goto("/ui/books?q=dune").await;
    me.follow("Edit Dune").await;
    me.wait_for_heading("Edit the book").await;
    let edit_page = me.path().await;
    let other = browser.profile(&stack.gateway).await;
    sign_in(&other, "reader", PASSWORD).await;
    other.goto(&edit_page).await;
    other.fill("title", "Dune Messiah").await;
    other.press("Save").await;
    assert!(other.text().await.contains("The book was saved."));

    me.fill("price_cents", "1299").await;
    me.press("Save").await;
    me.wait_for_heading("This book was changed meanwhile").await;
    let conflict = me.text().await;
    assert!(
        conflict.contains("Dune Messiah") && conflict.contains("1299"),
        "{conflict}"
    );
    me.press("Overwrite with my values").await;
    assert!(me.text().await.contains("The book was saved."));
    let stored = titles(&stack, "reader").await;
    assert!(stored.contains(&"Dune".to_owned()) && !stored.contains(&"Dune Messiah".to_owned()));

    // Delete, with confirmation.
    me.goto("/ui/books?q=dune").await;
    me.follow("Delete Dune").await;
    me.wait_for_heading("Delete “Dune”?").await;
    me.press("Delete").await;
    assert!(me.text().await.contains("The book was deleted."));
    assert!(!titles(&stack, "reader").await.contains(&"Dune".to_owned()));

    // Signed out, the back button shows no one's books.
    me.goto("/ui/books?q=neuromancer").await;
    assert!(me.text().await.contains("Neuromancer"));
    me.press("Sign out").await;
    me.wait_for_heading("Sign in").await;
    me.client.back().await.unwrap();
    let after = me.text().await;
    assert!(
        !after.contains("Neuromancer"),
        "the back button showed: {after}"
    );
    assert!(me.path().await.starts_with("/ui/sign-in"));
    other.close().await;
    me.close().await;
    done("the books journey", started);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a suite of scripts/test, which provides the browser: run with --ignored"]
async fn a_wrong_password_is_said_and_the_username_kept() {
    let Some(mut browser) = Browser::start() else {
        return;
    };
    let stack = stack().await;
    stack.user("forgetful").await;
    let page = browser.profile(&stack.gateway).await;

    sign_in(&page, "forgetful", "not the password").await;

    page.wait_for_heading("Sign in").await;
    assert!(page.text().await.contains("Wrong username or password."));
    assert_eq!(page.value("username").await, "forgetful");
    assert_eq!(page.value("password").await, "");
    page.close().await;
}

/// The button that signs out one session of the list.
const REVOKE: &str = "form[action$='/revoke'] button";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a suite of scripts/test, which provides the browser: run with --ignored"]
async fn sessions_in_two_profiles_one_signing_out_the_other() {
    let Some(mut browser) = Browser::start() else {
        return;
    };
    let stack = stack().await;
    stack.user("traveller").await;
    let laptop = browser.profile(&stack.gateway).await;
    let phone = browser.profile(&stack.gateway).await;
    sign_in(&laptop, "traveller", PASSWORD).await;
    sign_in(&phone, "traveller", PASSWORD).await;

    laptop.follow("Sessions").await;
    let listed = laptop.text().await;
    assert_eq!(listed.matches("This session").count(), 1, "{listed}");
    // The registration's session and the phone's: two to sign out, each with its button.
    let buttons = laptop.client.find_all(Locator::Css(REVOKE)).await.unwrap();
    assert_eq!(buttons.len(), 2);
    laptop.press("Sign out everywhere else").await;
    assert!(laptop.text().await.contains("2 sessions were signed out."));

    // The phone's next click leads to the sign-in page, and back to where it was going after.
    phone.follow("Password").await;
    phone.wait_for_heading("Sign in").await;
    assert_eq!(phone.path().await, "/ui/sign-in?next=%2Fui%2Fpassword");
    sign_in(&phone, "traveller", PASSWORD).await;
    laptop.goto("/ui/sessions").await;
    laptop.click(REVOKE).await;
    assert!(laptop.text().await.contains("One session was signed out."));
    phone.follow("Books").await;
    phone.wait_for_heading("Sign in").await;
    laptop.close().await;
    phone.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a suite of scripts/test, which provides the browser: run with --ignored"]
async fn a_password_change_ends_the_other_profiles_session() {
    let Some(mut browser) = Browser::start() else {
        return;
    };
    let stack = stack().await;
    stack.user("changer").await;
    let here = browser.profile(&stack.gateway).await;
    let there = browser.profile(&stack.gateway).await;
    sign_in(&here, "changer", PASSWORD).await;
    sign_in(&there, "changer", PASSWORD).await;

    here.follow("Password").await;
    here.fill("current_password", "not it").await;
    here.fill("new_password", "a brand new secret").await;
    here.press("Change password").await;
    assert!(
        here.text().await.contains("Is not the current password."),
        "{}",
        here.text().await
    );
    here.fill("current_password", PASSWORD).await;
    here.fill("new_password", "a brand new secret").await;
    here.press("Change password").await;
    assert!(here.text().await.contains("Your password was changed."));

    there.follow("Sessions").await;
    there.wait_for_heading("Sign in").await;
    here.follow("Books").await;
    here.wait_for_heading("Your books").await;
    here.close().await;
    there.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a suite of scripts/test, which provides the browser: run with --ignored"]
async fn an_admin_deactivates_a_user_whose_console_is_open() {
    let Some(mut browser) = Browser::start() else {
        return;
    };
    let stack = stack().await;
    stack.admin("root").await;
    stack.user("tenant").await;
    let admin = browser.profile(&stack.gateway).await;
    let tenant = browser.profile(&stack.gateway).await;
    sign_in(&admin, "root", PASSWORD).await;
    sign_in(&tenant, "tenant", PASSWORD).await;
    tenant.wait_for_heading("Your books").await;

    // A regular user is refused the users page, and is offered no link to it.
    tenant.goto("/ui/admin/users").await;
    assert_eq!(tenant.heading().await, "Not allowed");
    assert!(
        tenant
            .client
            .find(Locator::LinkText("Users"))
            .await
            .is_err()
    );
    tenant.follow("Books").await;

    admin.follow("Users").await;
    admin.wait_for_heading("Users").await;
    admin.press("Deactivate tenant").await;
    assert!(admin.text().await.contains("tenant was updated."));
    assert!(admin.text().await.contains("Deactivated"));

    tenant.follow("Books").await;
    tenant.wait_for_heading("Sign in").await;
    sign_in(&tenant, "tenant", PASSWORD).await;
    assert!(tenant.text().await.contains("Wrong username or password."));

    admin.press("Activate tenant").await;
    admin.press("Make admin tenant").await;
    assert!(
        admin.text().await.contains("Remove admin role"),
        "{}",
        admin.text().await
    );
    admin.close().await;
    tenant.close().await;
}

/// A page on another site (`localhost` is not `127.0.0.1`) with a form that posts a book to
/// the console, as a forger would lure a signed-in visitor into submitting.
async fn forger(console: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let page = format!(
        "<!doctype html><title>Win a prize</title><form method=post action=\"{console}/ui/books\">\
         <input type=hidden name=title value=Forged><input type=hidden name=author value=Mallory>\
         <input type=hidden name=csrf value=guess><button>Claim</button></form>"
    );
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    format!("http://localhost:{port}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a suite of scripts/test, which provides the browser: run with --ignored"]
async fn no_script_sees_a_token_and_another_site_cannot_post_a_form() {
    let Some(mut browser) = Browser::start() else {
        return;
    };
    let stack = stack().await;
    stack.user("victim").await;
    let page = browser.profile(&stack.gateway).await;
    sign_in(&page, "victim", PASSWORD).await;
    page.wait_for_heading("Your books").await;

    assert_eq!(
        page.document_cookie().await,
        "",
        "no cookie is readable by scripts"
    );
    let cookies = page.client.get_all_cookies().await.unwrap();
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    for cookie in &cookies {
        assert_eq!(cookie.http_only(), Some(true), "{cookie}");
        assert_eq!(
            format!("{:?}", cookie.same_site()),
            "Some(Strict)",
            "{cookie}"
        );
    }

    page.client
        .goto(&forger(&stack.gateway).await)
        .await
        .unwrap();
    page.press("Claim").await;
    assert!(
        titles(&stack, "victim").await.is_empty(),
        "the forged book was stored"
    );
    page.goto("/ui/books").await;
    assert_eq!(
        page.heading().await,
        "Your books",
        "the visitor is still signed in"
    );
    page.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a suite of scripts/test, which provides the browser: run with --ignored"]
async fn every_page_is_accessible_keeps_to_its_policy_and_is_pictured() {
    let Some(mut browser) = Browser::start() else {
        return;
    };
    let started = Instant::now();
    let stack = stack().await;
    stack.admin("root").await;
    let token = stack.user("ada").await.access;
    for (title, author) in [
        ("Dune", "Frank Herbert"),
        ("Neuromancer", "William Gibson"),
        ("The Left Hand of Darkness", "Ursula K. Le Guin"),
    ] {
        stack.send_json(Method::POST, "/api/books", Some(&token), &json!({"title": title, "author": author, "isbn": "0-441-17271-7", "price_cents": 999, "published_year": 1965})).await;
    }
    let other = browser.profile(&stack.gateway).await;
    sign_in(&other, "ada", PASSWORD).await;
    let page = browser.profile(&stack.gateway).await;

    let mut problems = Vec::new();
    let mut visit = async |name: &str, page: &Profile| {
        page.screenshots(name).await;
        for violation in page.accessibility_violations().await {
            problems.push(format!("{name}: {violation}"));
        }
        for report in page.csp_reports().await {
            problems.push(format!("{name}: CSP: {report}"));
        }
    };

    page.goto("/ui/sign-in").await;
    visit("sign-in", &page).await;
    page.goto("/ui/register").await;
    visit("register", &page).await;
    sign_in(&page, "ada", "not the password").await;
    visit("sign-in-error", &page).await;
    sign_in(&page, "ada", PASSWORD).await;
    page.wait_for_heading("Your books").await;
    visit("books", &page).await;
    page.follow("Add a book").await;
    page.fill("isbn", "123").await;
    page.fill("title", "A book").await;
    page.fill("author", "Someone").await;
    page.press("Save").await;
    visit("book-invalid", &page).await;
    page.goto("/ui/books?q=dune").await;
    page.follow("Edit Dune").await;
    visit("book-edit", &page).await;
    let edit = page.path().await;
    other.goto(&edit).await;
    other.fill("price_cents", "1500").await;
    other.press("Save").await;
    page.fill("title", "Dune (first edition)").await;
    page.press("Save").await;
    page.wait_for_heading("This book was changed meanwhile")
        .await;
    visit("book-conflict", &page).await;
    page.goto("/ui/books?q=neuromancer").await;
    page.follow("Delete Neuromancer").await;
    visit("book-delete", &page).await;
    page.goto("/ui/sessions").await;
    visit("sessions", &page).await;
    page.goto("/ui/password").await;
    visit("password", &page).await;
    page.goto("/ui/admin/users").await;
    visit("forbidden", &page).await;
    page.goto("/ui/no-such-page").await;
    visit("not-found", &page).await;
    page.press("Sign out").await;
    sign_in(&page, "root", PASSWORD).await;
    page.goto("/ui/admin/users").await;
    visit("users", &page).await;

    assert!(problems.is_empty(), "{problems:#?}");
    other.close().await;
    page.close().await;
    done("the pages' checks and pictures", started);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a suite of scripts/test, which provides the browser: run with --ignored"]
async fn the_console_works_with_javascript_off() {
    let Some(mut browser) = Browser::start() else {
        return;
    };
    let stack = stack().await;
    let page = browser.profile_without_javascript(&stack.gateway).await;

    page.goto("/ui/register").await;
    page.fill("username", "plain").await;
    page.fill("email", "plain@example.org").await;
    page.fill("password", PASSWORD).await;
    page.press("Create account").await;
    page.follow("Add a book").await;
    page.fill("title", "Dune").await;
    page.fill("author", "Frank Herbert").await;
    page.press("Save").await;

    let row = page.client.find(Locator::Css("tbody th")).await.unwrap();
    assert_eq!(row.text().await.unwrap(), "Dune");
    assert_eq!(titles(&stack, "plain").await, ["Dune"]);
    page.press("Sign out").await;
    assert!(page.path().await.starts_with("/ui/sign-in"));
    page.close().await;
}
