//! [`wait_json`]: waits for one result file to appear and decode, waking on
//! the sdk watcher (inotify backed by a short rescan) instead of polling.
//!
//! One watcher per wait, filtered to the exact file name: the waits that
//! use it (delegation, sub-agent batches, MCP calls) are few at a time, and
//! a dedicated watcher keeps each wait independent of the others.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::ipc::{NameFilter, WatchError, WatchEvent, WatchOptions};

/// Rescan interval of a result watcher: bounds the latency where inotify
/// events are lost (some sandboxes drop cross-container events).
pub const RESULT_RESCAN: Duration = Duration::from_millis(250);

/// After this long undecodable, a result file's error is remembered for the
/// timeout message.
const INVALID_AFTER: Duration = Duration::from_secs(1);

/// Why no result was read.
#[derive(Debug, Error)]
pub enum WaitError {
    /// Nothing decodable appeared in time.
    #[error(
        "no result at {} within {waited:?}{}",
        path.display(),
        invalid.as_deref().map(|e| format!(" (a file was there but never decoded: {e})")).unwrap_or_default()
    )]
    Timeout {
        /// The awaited file.
        path: PathBuf,
        /// How long the wait lasted.
        waited: Duration,
        /// The last decode error of a file that was there but invalid.
        invalid: Option<String>,
    },
    /// The path has no parent directory or file name.
    #[error("cannot wait for {}: not a file path", path.display())]
    BadPath {
        /// The path.
        path: PathBuf,
    },
    /// The watcher could not start.
    #[error("cannot watch for {}: {source}", path.display())]
    Watch {
        /// The awaited file.
        path: PathBuf,
        /// The watcher's error.
        #[source]
        source: WatchError,
    },
    /// The watcher stopped before the file appeared.
    #[error("the watcher for {} stopped", path.display())]
    Stopped {
        /// The awaited file.
        path: PathBuf,
    },
}

impl WaitError {
    /// True for [`WaitError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }
}

/// Waits up to `wait` for `path` to hold JSON that decodes as `T`, and
/// returns it. A file that is there already counts; an empty or half-written
/// file is read again until it decodes. The file is left in place.
pub async fn wait_json<T>(path: &Path, wait: Duration) -> Result<T, WaitError>
where
    T: DeserializeOwned + Send + 'static,
{
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Err(WaitError::BadPath {
            path: path.to_path_buf(),
        });
    };
    let mut watch = WatchOptions::new(dir)
        .filter(NameFilter::exact(name))
        .rescan_interval(RESULT_RESCAN.min(wait.max(Duration::from_millis(10))))
        .invalid_after(INVALID_AFTER)
        .capacity(4)
        .spawn_json::<T>()
        .map_err(|source| WaitError::Watch {
            path: path.to_path_buf(),
            source,
        })?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut invalid = None;
    loop {
        match tokio::time::timeout_at(deadline, watch.recv()).await {
            Ok(Some(WatchEvent::File(d))) => return Ok(d.value),
            Ok(Some(WatchEvent::Invalid(f))) => invalid = Some(f.error),
            Ok(None) => {
                return Err(WaitError::Stopped {
                    path: path.to_path_buf(),
                });
            }
            Err(_elapsed) => {
                // A file written at the very deadline still counts.
                if let Some(v) = std::fs::read(path)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                {
                    return Ok(v);
                }
                return Err(WaitError::Timeout {
                    path: path.to_path_buf(),
                    waited: wait,
                    invalid,
                });
            }
        }
    }
}

/// Removes `path`, quietly when it is already gone.
pub(crate) fn remove_quietly(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove IPC file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_on_a_file_written_later_and_reads_one_already_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("result-1.json");
        let p = path.clone();
        let writer = tokio::spawn(async move {
            tokio::task::yield_now().await;
            std::fs::write(p.with_extension("json.tmp"), b"{\"a\":1}").unwrap();
            std::fs::rename(p.with_extension("json.tmp"), &p).unwrap();
        });
        let v: serde_json::Value = wait_json(&path, Duration::from_secs(10)).await.unwrap();
        assert_eq!(v["a"], 1);
        writer.await.unwrap();
        let again: serde_json::Value = wait_json(&path, Duration::from_secs(10)).await.unwrap();
        assert_eq!(again, v);
    }

    #[tokio::test]
    async fn times_out_naming_an_undecodable_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("result-2.json");
        std::fs::write(&path, b"{not json").unwrap();
        let e = wait_json::<serde_json::Value>(&path, Duration::from_millis(1500))
            .await
            .unwrap_err();
        assert!(e.is_timeout());
        assert!(e.to_string().contains("never decoded"), "{e}");
    }
}
