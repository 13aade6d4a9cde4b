//! Capturing a child's stdout or stderr with bounded memory.

use agentpod_sdk::skill::cap_output;
use agentpod_sdk::wire::exec::MAX_OUTPUT_CHARS;

/// Bytes kept per stream: enough for [`MAX_OUTPUT_CHARS`] + 1 characters
/// of four bytes each, so whether the output was cut is always known.
const KEEP_BYTES: usize = 4 * (MAX_OUTPUT_CHARS + 1);

/// What one stream produced: the first bytes, and whether anything other
/// than newlines came after them. The rest is read and discarded, so a
/// chatty command never blocks on a full pipe and never fills memory.
#[derive(Debug, Default, Clone)]
pub struct Capture {
    kept: Vec<u8>,
    dropped_text: bool,
}

impl Capture {
    /// Adds a chunk read from the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        let room = KEEP_BYTES.saturating_sub(self.kept.len());
        let (keep, drop) = chunk.split_at(room.min(chunk.len()));
        self.kept.extend_from_slice(keep);
        if drop.iter().any(|&b| b != b'\n') {
            self.dropped_text = true;
        }
    }

    /// The result text, by upstream's rules (see
    /// [`agentpod_sdk::skill::cap_output`]); invalid UTF-8 is replaced.
    pub fn finish(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.kept).into_owned();
        if self.dropped_text {
            // More text followed what was kept: make sure the cut shows even
            // if the kept part ends in newlines.
            text.push('\u{1}');
        }
        cap_output(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentpod_sdk::wire::exec::TRUNCATED_SUFFIX;

    #[test]
    fn bounded_and_exact() {
        let mut c = Capture::default();
        c.push(b"hello\n");
        c.push(b"\n");
        assert_eq!(c.finish(), "hello");
        let mut c = Capture::default();
        for _ in 0..100 {
            c.push(&[b'a'; 10_000]);
        }
        assert!(c.kept.len() <= KEEP_BYTES);
        let out = c.finish();
        assert!(out.ends_with(TRUNCATED_SUFFIX));
        assert_eq!(
            out.chars().count(),
            MAX_OUTPUT_CHARS + TRUNCATED_SUFFIX.len()
        );
        // Only newlines beyond the kept part: not a cut.
        let mut c = Capture::default();
        c.push(&[b'b'; 100]);
        c.push(&vec![b'\n'; KEEP_BYTES]);
        assert_eq!(c.finish(), "b".repeat(100));
    }
}
