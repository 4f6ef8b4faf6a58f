//! Admission control in front of bcrypt: beyond what the hashing threads can finish within
//! `passwords.admission_budget_ms`, a login is refused with UNAVAILABLE and `retry-after`
//! instead of waiting, and a refused hash never runs. One hashing thread and bcrypt costs far
//! above the tests' usual 4 keep the admitted hashes running while the rest are answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use test_support::both_backends;
use tokio::task::JoinSet;
use tonic::{Code, Status};

use crate::helpers::{Login, PASSWORD, TestApp, TestOptions, spawn_app_with};

const STORM: usize = 12;

fn one_slow_thread(bcrypt_cost: u32, admission_budget_ms: u64) -> TestOptions {
    TestOptions {
        bcrypt_cost,
        hashing_threads: 1,
        admission_budget_ms,
        // Every login of the storm is charged while in flight; the throttle is not the point.
        client_max_failures: 1_000,
        account_max_failures: 1_000,
        ..TestOptions::default()
    }
}

/// What a login of the storm got, and how many logins had succeeded before its answer.
struct Answer {
    outcome: Result<Login, Status>,
    successes_before: usize,
}

/// `STORM` logins as `username` at once, each from an address of its own.
///
/// The account has logged in before, so its throttle counter exists: concurrent first
/// attempts that all create one are what the throttle's tests are about, not these.
async fn storm(app: &Arc<TestApp>, username: &str) -> Vec<Answer> {
    let successes = Arc::new(AtomicUsize::new(0));
    let mut logins = JoinSet::new();
    for n in 0..STORM {
        let (app, successes, username) =
            (Arc::clone(app), Arc::clone(&successes), username.to_owned());
        logins.spawn(async move {
            let ip = format!("198.51.100.{n}");
            let outcome = app.login_from(&username, PASSWORD, &ip).await;
            let successes_before = if outcome.is_ok() {
                successes.fetch_add(1, Ordering::SeqCst)
            } else {
                successes.load(Ordering::SeqCst)
            };
            Answer {
                outcome,
                successes_before,
            }
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = logins.join_next().await {
        answers.push(answer.unwrap());
    }
    answers
}

/// Asserts that every answer is a session or UNAVAILABLE with a `retry-after` of at least a
/// second, and returns the refusals.
fn refusals(answers: &[Answer]) -> Vec<&Answer> {
    let refused: Vec<_> = answers.iter().filter(|a| a.outcome.is_err()).collect();
    for answer in &refused {
        let Err(status) = &answer.outcome else {
            unreachable!()
        };
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        let retry_after = grpc_conventions::retry_after(status);
        assert!(retry_after.is_some_and(|s| s >= 1), "{status:?}");
    }
    refused
}

async fn refusals_counted(app: &TestApp) -> f64 {
    let mut total = 0.0;
    for reason in ["queue_full", "over_budget", "expired"] {
        total += app
            .metric(&format!(
                r#"bookstore_password_hash_refusals_total{{reason="{reason}"}}"#
            ))
            .await;
    }
    total
}

both_backends! {
    async fn logins_beyond_the_budget_are_refused_while_the_admitted_hash_runs(backend) {
        // A budget shorter than any hash: only a hash into the idle pool is admitted.
        let app = Arc::new(spawn_app_with(backend, one_slow_thread(12, 10)).await);
        app.user("crowd").await;
        app.login("crowd", PASSWORD).await.unwrap();

        let answers = storm(&app, "crowd").await;

        let refused = refusals(&answers);
        let succeeded = STORM - refused.len();
        assert!(succeeded >= 1, "the admitted login succeeds");
        assert!(
            refused.iter().any(|a| a.successes_before == 0),
            "refusals come back while the first admitted hash still runs"
        );
        assert_eq!(refusals_counted(&app).await, refused.len() as f64);
        assert_eq!(
            app.metric("bookstore_password_hash_duration_seconds_count").await,
            (succeeded + 2) as f64,
            "a refused login hashes nothing (the two more: the registration, the first login)"
        );
    }

    async fn an_admitted_hash_that_waits_past_its_budget_is_refused_and_never_runs(backend) {
        let mut app = spawn_app_with(backend, one_slow_thread(12, 2_000)).await;
        app.user("crowd").await;
        app.login("crowd", PASSWORD).await.unwrap();
        // The estimate now starts from a cost-4 hash while the stored hash costs 12: the whole
        // storm is admitted, and most of it can only wait.
        app.restart(|settings| {
            settings.passwords.bcrypt_cost = 4;
            settings.passwords.admission_budget_ms = 500;
        })
        .await;
        let app = Arc::new(app);

        let answers = storm(&app, "crowd").await;

        let refused = refusals(&answers);
        let succeeded = STORM - refused.len();
        assert!(succeeded >= 1, "the first login starts at once and succeeds");
        assert!(!refused.is_empty(), "{STORM} cost-12 hashes in a row cannot fit 500 ms");
        assert!(
            refused.iter().any(|a| a.successes_before < succeeded),
            "refused callers are answered at their deadline, not after the hashes ahead"
        );
        assert!(
            app.metric(r#"bookstore_password_hash_refusals_total{reason="expired"}"#).await >= 1.0
        );
        assert_eq!(
            app.metric("bookstore_password_hash_duration_seconds_count").await,
            succeeded as f64,
            "an expired hash never runs"
        );
    }
}
