//! Classified provider errors.

use std::fmt;
use std::time::Duration;

/// What went wrong, in terms the agent loop can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The key was missing, wrong or lacks permission (401/403).
    Auth,
    /// Too many requests or quota exhausted (429).
    RateLimit,
    /// The prompt does not fit the model's context window.
    ContextTooLong,
    /// The provider failed (5xx).
    Server,
    /// The endpoint could not be reached or the connection broke.
    Network,
    /// No answer within `LLM_REQUEST_TIMEOUT`.
    Timeout,
    /// The provider rejected the request (other 4xx).
    BadRequest,
    /// The answer could not be understood.
    InvalidResponse,
}

impl ErrorKind {
    /// A short label used in error messages: `rate limited`, `auth`, ...
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Auth => "authentication failed",
            ErrorKind::RateLimit => "rate limited",
            ErrorKind::ContextTooLong => "context too long",
            ErrorKind::Server => "server error",
            ErrorKind::Network => "network error",
            ErrorKind::Timeout => "request timed out",
            ErrorKind::BadRequest => "bad request",
            ErrorKind::InvalidResponse => "invalid response",
        }
    }

    /// Whether a retry may succeed (rate limits, server and network errors,
    /// timeouts).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimit | ErrorKind::Server | ErrorKind::Network | ErrorKind::Timeout
        )
    }
}

/// A failed provider call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ProviderError {
    /// The classification.
    pub kind: ErrorKind,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
    /// What the server or the transport said.
    pub message: String,
    /// The server's `Retry-After`, when sent.
    pub retry_after: Option<Duration>,
    /// What the server's `x-should-retry` header said (`false`: this
    /// cannot heal, do not try again; `true`: try again), when sent. The
    /// OpenAI and Anthropic APIs send it, and so does the scripted test
    /// server for a request that does not match its script.
    pub should_retry: Option<bool>,
}

impl ProviderError {
    /// An error of `kind` with `message` and no HTTP status.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            message: message.into(),
            retry_after: None,
            should_retry: None,
        }
    }

    /// Whether another attempt may succeed: the server's word when it gave
    /// one, else the kind's ([`ErrorKind::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.should_retry.unwrap_or(self.kind.is_retryable())
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.label())?;
        if let Some(s) = self.status {
            write!(f, " (HTTP {s})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_kind_and_status() {
        let mut e = ProviderError::new(ErrorKind::RateLimit, "slow down");
        e.status = Some(429);
        assert_eq!(e.to_string(), "rate limited (HTTP 429): slow down");
        assert!(e.kind.is_retryable() && e.is_retryable());
        assert!(!ErrorKind::Auth.is_retryable());
        e.should_retry = Some(false);
        assert!(!e.is_retryable(), "the server said it cannot heal");
    }
}
