//! Revoke-to-deny latency across gateway instances, for `scripts/load`: logs one user in
//! `count` times (one session each), then for each session logs out through the first gateway
//! and polls the second with the same token until the second itself refuses it as revoked.
//! The latency runs from the logout's answer (the revocation is committed and published) to
//! the second gateway's refusal, one poll's round trip included.
//!
//! `cargo run --release -p gateway --example revoke_to_deny -- FIRST_URL SECOND_URL USERNAME PASSWORD [COUNT]`
//!
//! Prints `scenario=revoke_to_deny count=… p50_ms=… p99_ms=… max_ms=… polls=…`.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const REVOKED: &str = "the access token has been revoked";
/// A revocation not seen after this long counts as lost, and the run fails.
const GIVE_UP: Duration = Duration::from_secs(5);

type Failure = Box<dyn std::error::Error>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [first, second, username, password, rest @ ..] = args.as_slice() else {
        return Err("usage: revoke_to_deny FIRST_URL SECOND_URL USERNAME PASSWORD [COUNT]".into());
    };
    let count: usize = rest.first().map_or(Ok(200), |count| count.parse())?;
    if count == 0 {
        return Err("COUNT must be at least 1".into());
    }
    let client = Client::new();

    let mut tokens = Vec::with_capacity(count);
    for _ in 0..count {
        let login: Value = client
            .post(format!("{first}/api/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = login["access_token"].as_str().ok_or("no access_token")?;
        tokens.push(token.to_owned());
    }

    let mut latencies = Vec::with_capacity(count);
    let mut polls = 0;
    for token in &tokens {
        // Known to the second gateway as valid first, as a client's token would be.
        let warm = books(&client, second, token).await?;
        if warm.status() != StatusCode::OK {
            return Err(format!("the second gateway answered {} before", warm.status()).into());
        }
        client
            .post(format!("{first}/api/auth/logout"))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?;
        let revoked_at = Instant::now();
        loop {
            polls += 1;
            let answer = books(&client, second, token).await?;
            if answer.status() == StatusCode::UNAUTHORIZED {
                let problem: Value = answer.json().await?;
                if problem["detail"] == REVOKED {
                    break;
                }
            }
            if revoked_at.elapsed() > GIVE_UP {
                return Err(format!("a revocation was not honoured within {GIVE_UP:?}").into());
            }
        }
        latencies.push(revoked_at.elapsed());
    }

    latencies.sort();
    let at = |quantile: f64| {
        // Nearest rank.
        let rank = (quantile * latencies.len() as f64).ceil() as usize;
        latencies[rank.clamp(1, latencies.len()) - 1].as_secs_f64() * 1_000.0
    };
    println!(
        "scenario=revoke_to_deny count={count} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} polls={polls}",
        at(0.50),
        at(0.99),
        at(1.0),
    );
    Ok(())
}

async fn books(client: &Client, base: &str, token: &str) -> reqwest::Result<reqwest::Response> {
    client
        .get(format!("{base}/api/books?limit=1"))
        .bearer_auth(token)
        .send()
        .await
}
