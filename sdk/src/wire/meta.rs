//! Trace context carried inside `/ipc` requests (`_meta`) and the
//! `/workspace/.sympozium/trace-context.json` file.
//!
//! Upstream writes `"_meta":{"trace_id","span_id","traceparent"}` into every
//! exec and MCP request so the sidecar can parent its spans on the agent's
//! tool span. `traceparent` is the W3C form `00-<trace>-<span>-<flags>`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `_meta` object of exec and MCP requests: W3C trace context.
///
/// Every field is optional on the wire (upstream's exec example carries only
/// `traceparent`), so empty fields are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Meta {
    /// 32 lowercase hex digits.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trace_id: String,
    /// 16 lowercase hex digits.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub span_id: String,
    /// `00-<trace_id>-<span_id>-<01|00>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub traceparent: String,
}

impl Meta {
    /// Builds all three fields from a trace id and span id.
    pub fn new(trace_id: impl Into<String>, span_id: impl Into<String>, sampled: bool) -> Self {
        let trace_id = trace_id.into();
        let span_id = span_id.into();
        let traceparent = traceparent(&trace_id, &span_id, sampled);
        Self {
            trace_id,
            span_id,
            traceparent,
        }
    }

    /// True when no field is set (the whole `_meta` object can be left out).
    pub fn is_empty(&self) -> bool {
        self.trace_id.is_empty() && self.span_id.is_empty() && self.traceparent.is_empty()
    }

    /// The trace context, from `traceparent` if it is valid, else from the
    /// separate ids (assumed sampled). `None` when neither gives valid ids.
    pub fn parsed(&self) -> Option<TraceParent> {
        TraceParent::parse(&self.traceparent).or_else(|| {
            let tp = traceparent(&self.trace_id, &self.span_id, true);
            TraceParent::parse(&tp)
        })
    }
}

/// Formats a W3C `traceparent` header value (version `00`).
pub fn traceparent(trace_id: &str, span_id: &str, sampled: bool) -> String {
    let flags = if sampled { "01" } else { "00" };
    format!("00-{trace_id}-{span_id}-{flags}")
}

/// A parsed and validated W3C `traceparent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// 16 lowercase hex digits, not all zero.
    pub span_id: String,
    /// The `sampled` bit of the trace flags.
    pub sampled: bool,
}

impl TraceParent {
    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`. Future versions (not `ff`) are
    /// accepted when they start with those four fields, as W3C asks.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.trim().split('-');
        let version = parts.next()?;
        let trace_id = parts.next()?;
        let span_id = parts.next()?;
        let flags = parts.next()?;
        let valid = is_hex(version, 2)
            && version != "ff"
            && (version != "00" || parts.next().is_none())
            && is_hex(trace_id, 32)
            && is_hex(span_id, 16)
            && is_hex(flags, 2)
            && trace_id.bytes().any(|b| b != b'0')
            && span_id.bytes().any(|b| b != b'0');
        if !valid {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(Self {
            trace_id: trace_id.to_owned(),
            span_id: span_id.to_owned(),
            sampled: flags & 1 == 1,
        })
    }

    /// The header value, version `00`.
    pub fn to_header(&self) -> String {
        traceparent(&self.trace_id, &self.span_id, self.sampled)
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `/workspace/.sympozium/trace-context.json`, written by the runner when it
/// has a valid span context so tools in the workspace can join the trace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TraceContextFile {
    /// 32 hex digits.
    #[serde(default)]
    pub trace_id: String,
    /// 16 hex digits.
    #[serde(default)]
    pub span_id: String,
    /// W3C `traceparent`.
    #[serde(default)]
    pub traceparent: String,
    /// `AGENT_RUN_ID`.
    #[serde(default)]
    pub agent_run_id: String,
    /// `INSTANCE_NAME`.
    #[serde(default)]
    pub instance_name: String,
    /// `AGENT_NAMESPACE`.
    #[serde(default)]
    pub namespace: String,
    /// `MODEL_NAME`.
    #[serde(default)]
    pub model: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const S: &str = "00f067aa0ba902b7";

    #[test]
    fn builds_traceparent() {
        let m = Meta::new(T, S, true);
        assert_eq!(m.traceparent, format!("00-{T}-{S}-01"));
        assert_eq!(Meta::new(T, S, false).traceparent, format!("00-{T}-{S}-00"));
    }

    #[test]
    fn parses_traceparent() {
        let tp = TraceParent::parse(&format!("00-{T}-{S}-01")).unwrap();
        assert_eq!(
            (tp.trace_id.as_str(), tp.span_id.as_str(), tp.sampled),
            (T, S, true)
        );
        assert!(
            !TraceParent::parse(&format!("00-{T}-{S}-00"))
                .unwrap()
                .sampled
        );
        assert_eq!(tp.to_header(), format!("00-{T}-{S}-01"));
    }

    #[test]
    fn rejects_bad_traceparent() {
        for bad in [
            "",
            "00",
            &format!("ff-{T}-{S}-01"),
            &format!("00-{}-{S}-01", "0".repeat(32)),
            &format!("00-{T}-{}-01", "0".repeat(16)),
            &format!("00-{}-{S}-01", T.to_uppercase()),
            &format!("00-{T}-{S}-01-extra"),
            &format!("00-{T}-{S}"),
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
        assert!(TraceParent::parse(&format!("01-{T}-{S}-01-extra")).is_some());
    }

    #[test]
    fn parsed_falls_back_to_ids() {
        let m = Meta {
            trace_id: T.into(),
            span_id: S.into(),
            traceparent: String::new(),
        };
        assert_eq!(m.parsed().unwrap().trace_id, T);
        assert!(Meta::default().parsed().is_none());
        assert!(Meta::default().is_empty());
    }
}
