//! The NATS event envelope: the body of every message on a `sympozium.*`
//! subject.
//!
//! ```json
//! {"topic":"agent.run.completed","timestamp":"2026-01-02T03:04:05.123456789Z",
//!  "metadata":{"agentRunID":"run-1","instanceName":"helper","namespace":"team"},
//!  "data":{...}}
//! ```
//!
//! `data` is raw JSON: the bridge publishes the bytes of the file that
//! triggered the event. Like Go's `json.RawMessage`, it is written compacted
//! with its key order kept. (Go additionally escapes `<`, `>` and `&` as
//! `\u003c` etc.; that changes no parsed value, so we do not.)

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use thiserror::Error;

use super::go::null_as_default;
use super::subjects::Topic;
use super::timestamp;

/// Metadata key: the AgentRun name.
pub const META_AGENT_RUN_ID: &str = "agentRunID";
/// Metadata key: the Agent (instance) name.
pub const META_INSTANCE_NAME: &str = "instanceName";
/// Metadata key: the namespace; the bridge leaves it out when empty.
pub const META_NAMESPACE: &str = "namespace";
/// Metadata key the control plane adds on delegation results.
pub const META_REQUEST_ID: &str = "requestId";
/// Metadata key the control plane adds on subagent batch results.
pub const META_BATCH_ID: &str = "batchId";
/// Metadata key the controller adds on `agent.run.failed`.
pub const META_REASON: &str = "reason";

/// Why an envelope could not be built or read.
#[derive(Debug, Error)]
pub enum EventError {
    /// The envelope or its `data` is not valid JSON of the expected shape.
    #[error("invalid event JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The data bytes are not UTF-8.
    #[error("event data is not UTF-8: {0}")]
    Utf8(#[from] std::str::Utf8Error),
}

/// The event envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Topic without the `sympozium.` prefix.
    pub topic: String,
    /// When the event was built, RFC 3339 with nanoseconds, UTC.
    #[serde(default)]
    pub timestamp: String,
    /// String metadata; keys are written sorted, as Go writes map keys.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: BTreeMap<String, String>,
    /// The payload, raw JSON.
    #[serde(default = "null_data")]
    pub data: Box<RawValue>,
}

fn null_data() -> Box<RawValue> {
    RawValue::NULL.to_owned()
}

impl Event {
    /// Builds an envelope stamped now, from the raw bytes of a document
    /// (typically the file that triggered it). The bytes must be one JSON
    /// value; they are compacted, key order kept.
    pub fn from_raw(
        topic: &Topic<'_>,
        metadata: BTreeMap<String, String>,
        data: &[u8],
    ) -> Result<Self, EventError> {
        let text = std::str::from_utf8(data)?;
        // Validate first so compaction only ever sees well-formed JSON.
        let raw = RawValue::from_string(text.trim().to_owned())?;
        let data = RawValue::from_string(compact_json(raw.get()))?;
        Ok(Self {
            topic: topic.topic(),
            timestamp: timestamp::now_rfc3339_nano(),
            metadata,
            data,
        })
    }

    /// Builds an envelope stamped now, serialising `data`.
    pub fn from_value<T: Serialize + ?Sized>(
        topic: &Topic<'_>,
        metadata: BTreeMap<String, String>,
        data: &T,
    ) -> Result<Self, EventError> {
        Ok(Self {
            topic: topic.topic(),
            timestamp: timestamp::now_rfc3339_nano(),
            metadata,
            data: serde_json::value::to_raw_value(data)?,
        })
    }

    /// Replaces the timestamp.
    pub fn with_timestamp(mut self, at: SystemTime) -> Self {
        self.timestamp = timestamp::format_rfc3339_nano(at);
        self
    }

    /// The NATS message body: compact JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising strings, a string map and an already valid raw value
        // into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a NATS message body.
    pub fn from_slice(body: &[u8]) -> Result<Self, EventError> {
        Ok(serde_json::from_slice(body)?)
    }

    /// Parses `data` as `T`.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, EventError> {
        Ok(serde_json::from_str(self.data.get())?)
    }

    /// The topic, parsed; `None` for topics outside the contract.
    pub fn parsed_topic(&self) -> Option<Topic<'_>> {
        Topic::parse(&self.topic)
    }

    /// `metadata["agentRunID"]`, or `""`.
    pub fn agent_run_id(&self) -> &str {
        self.metadata
            .get(META_AGENT_RUN_ID)
            .map_or("", String::as_str)
    }
}

/// The metadata the ipc-bridge attaches to every event it publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeMetadata {
    /// `AGENT_RUN_ID`.
    pub agent_run_id: String,
    /// `INSTANCE_NAME`.
    pub instance_name: String,
    /// `AGENT_NAMESPACE`; left out of the map when empty.
    pub namespace: String,
}

impl BridgeMetadata {
    /// The metadata map: `agentRunID` and `instanceName` always,
    /// `namespace` only when non-empty.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert(META_AGENT_RUN_ID.to_owned(), self.agent_run_id.clone());
        m.insert(META_INSTANCE_NAME.to_owned(), self.instance_name.clone());
        if !self.namespace.is_empty() {
            m.insert(META_NAMESPACE.to_owned(), self.namespace.clone());
        }
        m
    }
}

/// Removes insignificant whitespace from valid JSON text, keeping
/// everything else (key order, number spelling, escapes) as it is.
pub fn compact_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn meta(ns: &str) -> BridgeMetadata {
        BridgeMetadata {
            agent_run_id: "run-1".into(),
            instance_name: "helper".into(),
            namespace: ns.into(),
        }
    }

    #[test]
    fn namespace_omitted_when_empty() {
        assert!(!meta("").to_map().contains_key(META_NAMESPACE));
        assert_eq!(meta("team").to_map()[META_NAMESPACE], "team");
    }

    #[test]
    fn raw_data_is_compacted_in_order() {
        let file = b"{\n  \"status\": \"success\",\n  \"response\": \"a b\\\" c\",\n  \"metrics\": {\"z\": 1, \"a\": 2}\n}\n";
        let ev = Event::from_raw(&Topic::RunCompleted, meta("").to_map(), file)
            .unwrap()
            .with_timestamp(UNIX_EPOCH + Duration::new(1_700_000_000, 5));
        assert_eq!(
            String::from_utf8(ev.to_bytes()).unwrap(),
            r#"{"topic":"agent.run.completed","timestamp":"2023-11-14T22:13:20.000000005Z","metadata":{"agentRunID":"run-1","instanceName":"helper"},"data":{"status":"success","response":"a b\" c","metrics":{"z":1,"a":2}}}"#
        );
        let back = Event::from_slice(&ev.to_bytes()).unwrap();
        assert_eq!(back.parsed_topic(), Some(Topic::RunCompleted));
        assert_eq!(back.agent_run_id(), "run-1");
        let v: serde_json::Value = back.data_as().unwrap();
        assert_eq!(v["metrics"]["a"], 2);
    }

    #[test]
    fn rejects_bad_data() {
        assert!(Event::from_raw(&Topic::RunCompleted, BTreeMap::new(), b"{").is_err());
        assert!(Event::from_raw(&Topic::RunCompleted, BTreeMap::new(), &[0xff]).is_err());
    }

    #[test]
    fn missing_fields_read_as_empty() {
        let ev = Event::from_slice(br#"{"topic":"x","metadata":null}"#).unwrap();
        assert!(ev.metadata.is_empty());
        assert_eq!(ev.data.get(), "null");
    }
}
