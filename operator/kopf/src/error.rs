//! What a handler can return instead of a value, and what the framework
//! itself can fail with.

use std::time::Duration;

/// A handler's failure. Kopf's two exception classes, as data.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Try again later: after `delay`, or after the framework's exponential
    /// backoff when `delay` is `None`.
    #[error("temporary error: {message}")]
    Temporary {
        /// Recorded in the handler's progress and logged.
        message: String,
        /// How long to wait before the next attempt.
        delay: Option<Duration>,
    },
    /// Give up: the handler is marked failed and never called again for
    /// this cause.
    #[error("permanent error: {0}")]
    Permanent(String),
}

impl HandlerError {
    /// A temporary error retried after exactly `delay`.
    pub fn temporary(message: impl Into<String>, delay: Duration) -> Self {
        Self::Temporary {
            message: message.into(),
            delay: Some(delay),
        }
    }

    /// A temporary error retried with the framework's backoff.
    pub fn retry(message: impl Into<String>) -> Self {
        Self::Temporary {
            message: message.into(),
            delay: None,
        }
    }

    /// A permanent error.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent(message.into())
    }
}

/// Any API error inside a handler is worth another try (with backoff).
impl From<kube::Error> for HandlerError {
    fn from(e: kube::Error) -> Self {
        Self::retry(format!("Kubernetes API: {e}"))
    }
}

/// A failure of the framework itself (reading or patching the object).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The object could not be turned into JSON.
    #[error("serializing the object: {0}")]
    Json(#[from] serde_json::Error),
    /// The object has no name or namespace (only namespaced, named objects
    /// are handled).
    #[error("object without name or namespace")]
    Unnamed,
}

/// Delay before retry number `retries` (0-based) when a handler did not
/// choose one: 1 s doubling to at most 5 minutes.
pub fn backoff(retries: u32) -> Duration {
    Duration::from_secs(1u64 << retries.min(8)).min(Duration::from_secs(300))
}
