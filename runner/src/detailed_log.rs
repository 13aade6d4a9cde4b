//! The detailed JSONL log (contract §1.10): with `DETAILED_LOG_PATH` set,
//! `<path>/<AGENT_RUN_ID>/agent.jsonl` records what the agent did and
//! `llm.jsonl` every model request and answer.
//!
//! Each line is `{"ts","run_id","seq","event",...fields}`. `seq` counts over
//! both files and continues from the highest value already there (a
//! restarted container appends). The directory is 0700 and the files 0600:
//! prompts and answers may hold secrets. A file that would grow past the
//! maximum size is renamed to `<name>.<n>` (n counting up) and started
//! afresh. String fields longer than 1 MiB are cut.
//!
//! Writing never fails the run: an I/O error is logged once per file and the
//! line is dropped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agentpod_sdk::agent::LoopObserver;
use agentpod_sdk::llm::{ChatRequest, ChatResponse, ProviderError, ToolCall};
use agentpod_sdk::wire::Meta;
use agentpod_sdk::wire::timestamp::now_rfc3339_nano;
use serde_json::{Map, Value, json};
use tracing::warn;

/// Default rotation size: 50 MiB.
pub const DEFAULT_MAX_SIZE: u64 = 50 * 1024 * 1024;
/// Longest string field kept whole.
pub const MAX_FIELD_BYTES: usize = 1024 * 1024;
const BUFFER: usize = 64 * 1024;

/// Where and how big.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailedLogConfig {
    /// `DETAILED_LOG_PATH`.
    pub dir: PathBuf,
    /// `DETAILED_LOG_MAX_SIZE`, in bytes.
    pub max_size: u64,
}

/// Parses `DETAILED_LOG_MAX_SIZE`: `<n>m` (MiB) or `<n>g` (GiB), case
/// insensitive; `None` when malformed or zero.
pub fn parse_max_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: u64 = num.trim().parse().ok().filter(|n| *n > 0)?;
    match unit {
        "m" => n.checked_mul(1024 * 1024),
        "g" => n.checked_mul(1024 * 1024 * 1024),
        _ => None,
    }
}

/// The two log files of one run.
#[derive(Debug)]
pub struct DetailedLog {
    run_id: String,
    seq: AtomicU64,
    agent: Mutex<Sink>,
    llm: Mutex<Sink>,
}

impl DetailedLog {
    /// Opens (or continues) the logs of `run_id` under `config.dir`.
    pub fn open(config: &DetailedLogConfig, run_id: &str) -> io::Result<Self> {
        let name = if run_id.is_empty() { "unknown" } else { run_id };
        let dir = config.dir.join(name);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let last = last_seq(&dir);
        Ok(Self {
            run_id: run_id.to_owned(),
            seq: AtomicU64::new(last),
            agent: Mutex::new(Sink::open(dir.join("agent.jsonl"), config.max_size)?),
            llm: Mutex::new(Sink::open(dir.join("llm.jsonl"), config.max_size)?),
        })
    }

    /// One `agent.jsonl` line.
    pub fn agent(&self, event: &str, fields: Value) {
        self.write(&self.agent, event, fields);
    }

    /// One `llm.jsonl` line.
    pub fn llm(&self, event: &str, fields: Value) {
        self.write(&self.llm, event, fields);
    }

    /// A model request (`request`).
    pub fn llm_request(&self, round: u32, request: &ChatRequest<'_>) {
        self.llm(
            "request",
            json!({
                "round": round,
                "system": request.system,
                "messages": request.messages,
                "tools": request.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
                "response_format": request.response_format,
            }),
        );
    }

    /// A model answer (`response`).
    pub fn llm_response(&self, round: u32, response: &ChatResponse, took: Duration) {
        self.llm(
            "response",
            json!({
                "round": round,
                "content": response.content,
                "thinking": response.thinking,
                "tool_calls": response.tool_calls,
                "finish_reason": response.finish_reason,
                "usage": response.usage,
                "duration_ms": millis(took),
            }),
        );
    }

    /// A failed model request (`error`).
    pub fn llm_error(&self, round: u32, error: &ProviderError) {
        self.llm("error", json!({"round": round, "error": error.to_string()}));
    }

    /// Writes the buffers out.
    pub fn flush(&self) {
        for sink in [&self.agent, &self.llm] {
            let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
            s.flush();
        }
    }

    fn write(&self, sink: &Mutex<Sink>, event: &str, fields: Value) {
        let mut line = Map::new();
        line.insert("ts".into(), Value::String(now_rfc3339_nano()));
        line.insert("run_id".into(), Value::String(self.run_id.clone()));
        // Lock first so lines within one file keep seq order.
        let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        line.insert("seq".into(), Value::from(seq));
        line.insert("event".into(), Value::String(event.to_owned()));
        if let Value::Object(fields) = fields {
            for (k, v) in fields {
                line.entry(k).or_insert(v);
            }
        }
        let mut value = Value::Object(line);
        truncate_strings(&mut value);
        let mut bytes = serde_json::to_vec(&value).unwrap_or_default();
        bytes.push(b'\n');
        s.write(&bytes);
    }
}

impl Drop for DetailedLog {
    fn drop(&mut self) {
        self.flush();
    }
}

impl LoopObserver for DetailedLog {
    fn on_start(&self, trace: Option<&Meta>) {
        let (trace_id, span_id) = trace
            .map(|m| (m.trace_id.as_str(), m.span_id.as_str()))
            .unwrap_or_default();
        self.agent(
            "span_start",
            json!({"span": "sympozium.agent.run", "trace_id": trace_id, "span_id": span_id}),
        );
    }

    fn on_request(&self, round: u32, request: &ChatRequest<'_>) {
        self.llm_request(round, request);
    }

    fn on_response(&self, round: u32, response: &ChatResponse, took: Duration) {
        self.llm_response(round, response, took);
    }

    fn on_error(&self, round: u32, error: &ProviderError) {
        self.llm_error(round, error);
    }

    fn on_tool_call(&self, call: &ToolCall) {
        self.agent(
            "tool_call",
            json!({"tool": call.name, "call_id": call.id, "arguments": call.arguments}),
        );
    }

    fn on_tool_result(&self, call: &ToolCall, result: &str, is_error: bool, took: Duration) {
        self.agent(
            "tool_result",
            json!({"tool": call.name, "call_id": call.id, "result": result,
                   "is_error": is_error, "duration_ms": millis(took)}),
        );
    }

    fn on_elision(&self, elided: usize) {
        self.agent("elision", json!({"elided": elided}));
    }
}

/// One file with its size, rotated when full.
#[derive(Debug)]
struct Sink {
    path: PathBuf,
    max_size: u64,
    size: u64,
    file: Option<BufWriter<File>>,
    failed: bool,
}

impl Sink {
    fn open(path: PathBuf, max_size: u64) -> io::Result<Self> {
        let file = open_append(&path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path,
            max_size,
            size,
            file: Some(BufWriter::with_capacity(BUFFER, file)),
            failed: false,
        })
    }

    fn write(&mut self, bytes: &[u8]) {
        let len = bytes.len() as u64;
        if self.size > 0
            && self.size + len > self.max_size
            && let Err(e) = self.rotate()
        {
            self.fail(&e);
            return;
        }
        let Some(f) = self.file.as_mut() else {
            return;
        };
        match f.write_all(bytes) {
            Ok(()) => self.size += len,
            Err(e) => self.fail(&e),
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(mut f) = self.file.take() {
            f.flush()?;
        }
        let n = next_rotation(&self.path);
        let mut rotated = self.path.clone().into_os_string();
        rotated.push(format!(".{n}"));
        fs::rename(&self.path, &rotated)?;
        self.file = Some(BufWriter::with_capacity(BUFFER, open_append(&self.path)?));
        self.size = 0;
        Ok(())
    }

    fn flush(&mut self) {
        if let Some(f) = self.file.as_mut()
            && let Err(e) = f.flush()
        {
            self.fail(&e);
        }
    }

    fn fail(&mut self, e: &io::Error) {
        if !self.failed {
            warn!(path = %self.path.display(), error = %e, "detailed log write failed; dropping lines");
            self.failed = true;
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// The next free `<name>.<n>`.
fn next_rotation(path: &Path) -> u64 {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return 1;
    };
    let prefix = format!("{name}.");
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            n.strip_prefix(&prefix)?.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0)
        + 1
}

/// The highest `seq` in any log file of `dir` (their last lines).
fn last_seq(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            if !(name.starts_with("agent.jsonl") || name.starts_with("llm.jsonl")) {
                return None;
            }
            let file = File::open(e.path()).ok()?;
            io::BufReader::new(file)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| serde_json::from_str::<Value>(&l).ok()?.get("seq")?.as_u64())
                .max()
        })
        .max()
        .unwrap_or(0)
}

/// Cuts every string longer than [`MAX_FIELD_BYTES`] (at a char boundary).
fn truncate_strings(v: &mut Value) {
    match v {
        Value::String(s) if s.len() > MAX_FIELD_BYTES => {
            let end = s.floor_char_boundary(MAX_FIELD_BYTES);
            let cut = s.len() - end;
            s.truncate(end);
            s.push_str(&format!("...[truncated {cut} bytes]"));
        }
        Value::Array(a) => a.iter_mut().for_each(truncate_strings),
        Value::Object(o) => o.values_mut().for_each(truncate_strings),
        _ => {}
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_size_units() {
        assert_eq!(parse_max_size("50m"), Some(50 * 1024 * 1024));
        assert_eq!(parse_max_size("2G"), Some(2 * 1024 * 1024 * 1024));
        for bad in ["", "m", "0m", "10", "10k", "-1m", "x m"] {
            assert_eq!(parse_max_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn rotates_and_seeds_seq() {
        let t = tempfile::tempdir().unwrap();
        let cfg = DetailedLogConfig {
            dir: t.path().to_path_buf(),
            max_size: 300,
        };
        let log = DetailedLog::open(&cfg, "r1").unwrap();
        for i in 0..6 {
            log.agent("tool_call", json!({"i": i, "pad": "x".repeat(100)}));
        }
        log.llm("request", json!({}));
        drop(log);
        let dir = t.path().join("r1");
        assert!(dir.join("agent.jsonl.1").exists());
        assert!(dir.join("agent.jsonl.2").exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("llm.jsonl")), 0o600);
        assert_eq!(last_seq(&dir), 7);
        let log = DetailedLog::open(&cfg, "r1").unwrap();
        log.llm("response", json!({}));
        drop(log);
        let text = fs::read_to_string(dir.join("llm.jsonl")).unwrap();
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["seq"], 8);
        assert_eq!(last["run_id"], "r1");
        assert_eq!(last["event"], "response");
    }

    #[test]
    fn long_strings_are_cut_on_a_char_boundary() {
        let mut v = json!({"a": ["é".repeat(MAX_FIELD_BYTES)]});
        truncate_strings(&mut v);
        let s = v["a"][0].as_str().unwrap();
        assert!(s.len() < MAX_FIELD_BYTES + 40);
        assert!(s.ends_with("bytes]"));
    }
}
