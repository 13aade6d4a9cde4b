//! Logging set-up shared by every agentpod binary: `tracing` to stderr
//! (stdout carries protocol: the result marker, MCP stdio), text or JSON
//! lines (`LOG_FORMAT=json`, as the images set), filtered by `RUST_LOG`
//! (default `info`).
//!
//! This is read before a binary's configuration so that configuration
//! errors are logged in the chosen format.

use tracing_subscriber::EnvFilter;

/// `LOG_FORMAT`: `json` for JSON lines, anything else for text.
pub const LOG_FORMAT: &str = "LOG_FORMAT";

/// Whether `LOG_FORMAT` asks for JSON.
pub fn json_requested() -> bool {
    std::env::var(LOG_FORMAT).is_ok_and(|v| v.trim().eq_ignore_ascii_case("json"))
}

/// Installs the global subscriber: stderr, `RUST_LOG` filter (default
/// `info`), JSON when `json` is true. Calling it twice is harmless.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// [`init`] with the format from `LOG_FORMAT`.
pub fn init_from_env() {
    init(json_requested());
}
