use std::sync::Once;

/// Sends the services' logs to the test output when `TEST_LOG` is set (e.g. `TEST_LOG=debug`),
/// and nowhere otherwise.
pub fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}
