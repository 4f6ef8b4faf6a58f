//! Property-based fuzzing of the whole HTTP API by schemathesis, driven by the gateway's own
//! /openapi.json: thousands of generated requests, valid and invalid, each checked for a 5xx, an
//! undocumented status, a body or content type that disagrees with the document. Ignored by a
//! plain `cargo test` because it needs schemathesis; `scripts/test` installs it (pinned, in a
//! virtualenv), points `SCHEMATHESIS` at it and runs this test.

use std::process::Stdio;

use test_support::Backend;

use crate::helpers::{StackOptions, spawn_stack_with};

/// What every run checks; `all` would add checks about semantics that a generator cannot know
/// (e.g. that a random but well-formed refresh token is accepted).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance,\
                      negative_data_rejection,missing_required_header,unsupported_method,\
                      ignored_auth";

/// Routes that can end the caller's session (schemathesis finds the session and user ids by
/// following responses): fuzzed in a second run, so that the first keeps its token.
const SESSION_ENDERS: &str = "^/api/(auth/logout|auth/sessions/|me/password|admin/users/)";

async fn schemathesis(stack_url: &str, token: &str, filter: [&str; 2]) -> bool {
    let program = std::env::var("SCHEMATHESIS")
        .expect("SCHEMATHESIS must name the schemathesis executable (scripts/test sets it)");
    // Its working directory too: schemathesis keeps a cache there.
    let scratch = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(program);
    command
        .arg("run")
        .arg(format!("{stack_url}/openapi.json"))
        .args(["--checks", CHECKS])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--max-examples",
            "100",
            "--seed",
            "20261127",
            // One worker: in CPython 3.11, parsing source in two threads at once can fail with
            // "AST constructor recursion depth mismatch" (gh-106905), which hypothesis does to
            // describe its strategies; a failure of the fuzzer, not of the API.
            "--workers",
            "1",
        ])
        .current_dir(scratch.path())
        .args(filter)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    // On the blocking pool: the stack under test runs on this test's runtime meanwhile.
    let status = tokio::task::spawn_blocking(move || command.status())
        .await
        .unwrap()
        .unwrap();
    status.success()
}

#[tokio::test]
#[ignore = "a suite of scripts/test, which installs schemathesis: run with --ignored --nocapture"]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let stack = spawn_stack_with(
        Backend::Postgres,
        StackOptions {
            rate_limit: 100_000,
            ..StackOptions::default()
        },
    )
    .await;
    // An admin, so that the admin routes are fuzzed beyond their 403.
    let fuzzer = stack.admin("fuzzer").await;
    for title in ["Dune", "Emma", "Ulysses"] {
        stack.create_book(&fuzzer.access, title).await;
    }

    let everything_else = schemathesis(
        &stack.gateway,
        &fuzzer.access,
        ["--exclude-path-regex", SESSION_ENDERS],
    )
    .await;
    let session_enders = schemathesis(
        &stack.gateway,
        &stack.logged_in("fuzzer").await.access,
        ["--include-path-regex", SESSION_ENDERS],
    )
    .await;
    assert!(
        everything_else && session_enders,
        "schemathesis found failures (its report is above)"
    );
}
