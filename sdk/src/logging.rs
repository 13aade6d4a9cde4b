//! Logging set-up shared by every agentpod binary: `tracing` to stderr
//! (stdout carries protocol: the result marker, MCP stdio), text or JSON
//! lines (`LOG_FORMAT=json`, as the images set), filtered by `RUST_LOG`
//! (default [`DEFAULT_FILTER`]).
//!
//! This is read before a binary's configuration so that configuration
//! errors are logged in the chosen format.

use std::process::ExitCode;

use tracing::Subscriber;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt};

pub use crate::llm::http::error_chain;

/// `LOG_FORMAT`: `json` for JSON lines, anything else for text.
pub const LOG_FORMAT: &str = "LOG_FORMAT";

/// Whether `LOG_FORMAT` asks for JSON.
pub fn json_requested() -> bool {
    std::env::var(LOG_FORMAT).is_ok_and(|v| v.trim().eq_ignore_ascii_case("json"))
}

/// The filter when `RUST_LOG` is unset: `info`, with the NATS client's own
/// connection chatter at `warn` (the bridges log connection state themselves).
pub const DEFAULT_FILTER: &str = "info,async_nats=warn";

/// The stderr layer every agentpod binary logs through: `RUST_LOG` filter
/// (default [`DEFAULT_FILTER`]), JSON lines with flat fields when `json` is
/// true, else text. Colours only when stderr is a terminal, so container
/// logs stay plain. Binaries that add layers (the runner's OpenTelemetry
/// export) stack them beside this one.
pub fn layer<S>(json: bool) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        fmt.json().flatten_event(true).with_filter(filter).boxed()
    } else {
        fmt.with_filter(filter).boxed()
    }
}

/// Installs [`layer`] as the global subscriber. Calling it twice is
/// harmless.
pub fn init(json: bool) {
    let _ = tracing_subscriber::registry().with(layer(json)).try_init();
}

/// [`init`] with the format from `LOG_FORMAT`.
pub fn init_from_env() {
    init(json_requested());
}

/// Reports a fatal error the way every agentpod command does: one line on
/// stderr, `<program>: <error: cause: cause>` with repeated causes left
/// out, and never a backtrace (`RUST_BACKTRACE` in the user's environment
/// is for panics, not for a missing file). Returns `code` for `main`.
pub fn fatal(program: &str, error: &(dyn std::error::Error + 'static), code: u8) -> ExitCode {
    eprintln!("{program}: {}", error_chain(error));
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading x.yaml: {source}")]
    struct Outer {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_its_parent_is_said_once() {
        let e = Outer {
            source: std::io::Error::other("no such file"),
        };
        assert_eq!(error_chain(&e), "reading x.yaml: no such file");
    }
}
