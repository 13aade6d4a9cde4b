//! Streams a run's output to `/ipc/output/stream-<n>.json` while it happens.
//!
//! Upstream writes one chunk with the whole response at the end. Here text and
//! thinking are written as the model produces them, coalesced so a token
//! stream does not become a file per token: a chunk is flushed when it holds
//! [`FLUSH_BYTES`], when it is older than [`FLUSH_AFTER`], when its type
//! changes, and at the end of every turn. Each chunk is written atomically,
//! with a rising `index`.

use std::time::{Duration, Instant};

use crate::ipc::IpcRoot;
use crate::llm::StreamEvent;
use crate::wire::{ChunkType, StreamChunk};

/// Flush a buffered chunk once it holds this many bytes.
pub const FLUSH_BYTES: usize = 512;
/// Flush a buffered chunk once it is this old.
pub const FLUSH_AFTER: Duration = Duration::from_millis(50);
/// Tool results are cut to this many bytes in stream chunks (the full text
/// goes to the model; the stream is for watchers).
pub const TOOL_RESULT_PREVIEW_BYTES: usize = 2000;

/// Writes stream chunks for one run.
#[derive(Debug)]
pub struct StreamWriter {
    ipc: IpcRoot,
    next_index: u64,
    pending: Option<(ChunkType, String, Instant)>,
    write_failures: u64,
}

impl StreamWriter {
    /// A writer that starts at `stream-0.json` under `ipc`.
    pub fn new(ipc: IpcRoot) -> Self {
        Self {
            ipc,
            next_index: 0,
            pending: None,
            write_failures: 0,
        }
    }

    /// How many chunks have been written.
    pub fn chunks_written(&self) -> u64 {
        self.next_index
    }

    /// Handles one provider event.
    pub fn on_event(&mut self, ev: StreamEvent) {
        match ev {
            StreamEvent::Text(t) => self.push(ChunkType::Text, &t),
            StreamEvent::Thinking(t) => self.push(ChunkType::Thinking, &t),
            StreamEvent::ToolCall { .. } => self.flush(),
        }
    }

    /// Records that a tool call starts: `content` is the tool name and
    /// arguments.
    pub fn tool_use(&mut self, call_id: &str, name: &str, arguments: &str) {
        self.flush();
        self.write(ChunkType::ToolUse, format!("{name} {arguments}"), call_id);
    }

    /// Records a tool result (a preview of at most
    /// [`TOOL_RESULT_PREVIEW_BYTES`]).
    pub fn tool_result(&mut self, call_id: &str, text: &str) {
        self.flush();
        let cut = text.floor_char_boundary(TOOL_RESULT_PREVIEW_BYTES);
        self.write(ChunkType::ToolResult, text[..cut].to_owned(), call_id);
    }

    /// Writes whatever is buffered.
    pub fn flush(&mut self) {
        if let Some((kind, content, _)) = self.pending.take() {
            self.write(kind, content, "");
        }
    }

    fn push(&mut self, kind: ChunkType, text: &str) {
        if text.is_empty() {
            return;
        }
        match &mut self.pending {
            Some((k, buf, _)) if *k == kind => buf.push_str(text),
            _ => {
                self.flush();
                self.pending = Some((kind, text.to_owned(), Instant::now()));
            }
        }
        if let Some((_, buf, since)) = &self.pending
            && (buf.len() >= FLUSH_BYTES || since.elapsed() >= FLUSH_AFTER)
        {
            self.flush();
        }
    }

    fn write(&mut self, kind: ChunkType, content: String, tool_id: &str) {
        let mut chunk = StreamChunk::text(content, self.next_index);
        chunk.kind = kind;
        chunk.tool_id = tool_id.to_owned();
        let path = self.ipc.stream_chunk(self.next_index);
        match self.ipc.write_json_atomic(&path, &chunk) {
            Ok(()) => self.next_index += 1,
            Err(e) => {
                // The stream is best effort: the result file carries the answer.
                self.write_failures += 1;
                tracing::warn!(path = %path.display(), error = %e, "could not write stream chunk");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(ipc: &IpcRoot, n: u64) -> StreamChunk {
        let bytes = std::fs::read(ipc.stream_chunk(n)).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn coalesces_text_and_splits_on_type_change() {
        let t = tempfile::tempdir().unwrap();
        let ipc = IpcRoot::new(t.path());
        ipc.create_dirs().unwrap();
        let mut w = StreamWriter::new(ipc.clone());
        w.on_event(StreamEvent::Thinking("hmm".into()));
        w.on_event(StreamEvent::Text("Hel".into()));
        w.on_event(StreamEvent::Text("lo".into()));
        w.tool_use("c1", "read_file", r#"{"path":"/x"}"#);
        w.tool_result("c1", &"é".repeat(TOOL_RESULT_PREVIEW_BYTES));
        w.on_event(StreamEvent::Text("done".into()));
        w.flush();
        assert_eq!(w.chunks_written(), 5);
        assert_eq!(
            (read(&ipc, 0).kind, read(&ipc, 0).content),
            (ChunkType::Thinking, "hmm".into())
        );
        assert_eq!(read(&ipc, 1).content, "Hello");
        let c = read(&ipc, 2);
        assert_eq!((c.kind, c.tool_id.as_str()), (ChunkType::ToolUse, "c1"));
        let c = read(&ipc, 3);
        assert_eq!(c.kind, ChunkType::ToolResult);
        assert_eq!(c.content.len(), TOOL_RESULT_PREVIEW_BYTES);
        assert_eq!(
            (read(&ipc, 4).index, read(&ipc, 4).content),
            (4, "done".into())
        );
    }
}
