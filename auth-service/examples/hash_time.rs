//! The time of one bcrypt hash at the configured default cost on this machine, for
//! `scripts/load`: the login throughput target is cores ÷ this time.
//!
//! `cargo run --release -p auth-service --example hash_time`
//!
//! Prints `bcrypt cost=… hash_ms=… cores=… logins_per_s_bound=…` (median of 9 hashes).

use std::time::Instant;

use auth_service::config::PasswordSettings;

fn main() -> Result<(), bcrypt::BcryptError> {
    let cost = PasswordSettings::default().bcrypt_cost;
    let mut times = Vec::new();
    for _ in 0..9 {
        let started = Instant::now();
        bcrypt::hash("correct horse battery", cost)?;
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!(
        "bcrypt cost={cost} hash_ms={:.1} cores={cores} logins_per_s_bound={:.1}",
        median * 1_000.0,
        cores as f64 / median,
    );
    Ok(())
}
