//! W3C trace context for NATS headers, taken from the file's `_meta`.
//!
//! Upstream sends no trace headers at all (its bridge never initialises
//! OpenTelemetry). We forward the agent's context when the file carries
//! one, so a control-plane consumer can parent its span on the agent's.
//! When the file has none we send none: the bridge exports no spans, and a
//! made-up parent would point downstream spans at a span no collector has.

use agentpod_sdk::wire::Meta;
use serde::Deserialize;

/// The NATS header name.
pub const TRACEPARENT_HEADER: &str = "traceparent";

#[derive(Deserialize)]
struct WithMeta {
    #[serde(rename = "_meta")]
    meta: Option<Meta>,
}

/// The `traceparent` of a JSON document's top-level `_meta`, validated and
/// normalised; `None` when absent or invalid.
pub fn traceparent_of(bytes: &[u8]) -> Option<String> {
    let doc: WithMeta = serde_json::from_slice(bytes).ok()?;
    doc.meta?.parsed().map(|tp| tp.to_header())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn from_meta() {
        let doc = format!(r#"{{"id":"1","_meta":{{"traceparent":"{TP}"}}}}"#);
        assert_eq!(traceparent_of(doc.as_bytes()).as_deref(), Some(TP));
        let ids = br#"{"_meta":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}}"#;
        assert_eq!(traceparent_of(ids).as_deref(), Some(TP));
    }

    #[test]
    fn absent_or_bad() {
        assert_eq!(traceparent_of(br#"{"a":1}"#), None);
        assert_eq!(traceparent_of(br#"{"_meta":{"traceparent":"junk"}}"#), None);
        assert_eq!(traceparent_of(br#"{"_meta":"x"}"#), None);
        assert_eq!(traceparent_of(b"[1]"), None);
    }
}
