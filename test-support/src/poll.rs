//! Waiting for a condition with a deadline, instead of sleeping.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often [`eventually`] re-checks its condition.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// Re-runs `check` until it returns `Some`, or panics with `what` after
/// `timeout`. Use it wherever a test would otherwise sleep.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// let v = agentpod_test_support::eventually(Duration::from_secs(1), "a value", || async { Some(7) }).await;
/// assert_eq!(v, 7);
/// # }
/// ```
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Waits until `path` exists and returns it; panics after `timeout`.
pub async fn wait_for_file(path: impl AsRef<Path>, timeout: Duration) -> PathBuf {
    let path = path.as_ref().to_path_buf();
    let what = format!("file {}", path.display());
    eventually(timeout, &what, || {
        let p = path.clone();
        async move { p.exists().then_some(p) }
    })
    .await
}
