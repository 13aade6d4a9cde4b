//! An incremental Server-Sent Events parser: bytes in, events out.
//!
//! Network chunks split a stream anywhere: inside a line, between `\r` and
//! `\n`, inside a multi-byte character. The parser keeps the unfinished
//! line as bytes and decodes a line only once it is complete, so no split
//! can corrupt an event.

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, when one was sent (absent means `message`).
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The last `id:` seen in this event.
    pub id: Option<String>,
}

/// Turns a byte stream into [`SseEvent`]s.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line being received (no terminator yet).
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` opening the next chunk
    /// belongs to that terminator, not to a new empty line.
    after_cr: bool,
    /// The byte-order mark may only appear at the very start.
    started: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk; returns the events it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut bytes = chunk;
        if !self.started && !bytes.is_empty() {
            self.started = true;
            // A UTF-8 BOM may open the stream; it is not part of a field.
            // (A BOM split across chunks is not worth handling: servers
            // do not send one.)
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' => self.end_line(&mut out),
                b'\r' => {
                    self.end_line(&mut out);
                    self.after_cr = true;
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(b);
                }
            }
        }
        out
    }

    /// Ends the stream: an event still open (no blank line after it) is
    /// dispatched, as lenient clients do.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut out);
        }
        self.end_line(&mut out);
        out.pop()
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        if self.line.is_empty() {
            self.dispatch(out);
            return;
        }
        let line = std::mem::take(&mut self.line);
        let line = String::from_utf8_lossy(&line);
        if line.starts_with(':') {
            return; // a comment (keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {} // `retry` and unknown fields are ignored
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        let id = self.id.take();
        if !self.has_data {
            // An event without data is not dispatched; its name is dropped.
            return;
        }
        self.has_data = false;
        out.push(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
            id,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
            id: None,
        }
    }

    fn parse_whole(input: &[u8]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = p.push(input);
        out.extend(p.finish());
        out
    }

    /// Every way of cutting `input` in two, and byte by byte, gives the same
    /// events as feeding it whole.
    fn assert_split_anywhere(input: &[u8], want: &[SseEvent]) {
        assert_eq!(parse_whole(input), want, "whole");
        for cut in 0..=input.len() {
            let mut p = SseParser::new();
            let mut out = p.push(&input[..cut]);
            out.extend(p.push(&input[cut..]));
            out.extend(p.finish());
            assert_eq!(out, want, "cut at {cut}");
        }
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for b in input {
            out.extend(p.push(std::slice::from_ref(b)));
        }
        out.extend(p.finish());
        assert_eq!(out, want, "byte by byte");
    }

    #[test]
    fn openai_style_stream() {
        let input = b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
        assert_split_anywhere(
            input,
            &[
                ev(None, "{\"a\":1}"),
                ev(None, "{\"b\":2}"),
                ev(None, "[DONE]"),
            ],
        );
    }

    #[test]
    fn crlf_event_names_and_comments() {
        let input = b": ping\r\nevent: message_start\r\ndata: {}\r\n\r\n:keepalive\r\n\r\nevent: ping\r\ndata:x\r\n\r\n";
        assert_split_anywhere(
            input,
            &[ev(Some("message_start"), "{}"), ev(Some("ping"), "x")],
        );
    }

    #[test]
    fn lone_cr_terminates_lines() {
        assert_split_anywhere(b"data: a\r\rdata: b\r\r", &[ev(None, "a"), ev(None, "b")]);
    }

    #[test]
    fn multi_line_data_and_id() {
        let input = "id: 7\ndata: first\ndata:  second é\ndata\n\n".as_bytes();
        let want = SseEvent {
            event: None,
            data: "first\n second é\n".into(),
            id: Some("7".into()),
        };
        assert_split_anywhere(input, &[want]);
    }

    #[test]
    fn multibyte_characters_survive_any_split() {
        assert_split_anywhere("data: héllo 🌍\n\n".as_bytes(), &[ev(None, "héllo 🌍")]);
    }

    #[test]
    fn event_without_data_is_dropped_and_name_does_not_leak() {
        assert_split_anywhere(b"event: a\n\ndata: x\n\n", &[ev(None, "x")]);
    }

    #[test]
    fn last_event_without_blank_line_is_flushed() {
        assert_split_anywhere(b"data: tail", &[ev(None, "tail")]);
        let mut p = SseParser::new();
        assert!(p.push(b"data: x\n\n").len() == 1);
        assert_eq!(p.finish(), None);
    }

    #[test]
    fn bom_at_start_is_ignored() {
        assert_eq!(parse_whole(b"\xEF\xBB\xBFdata: x\n\n"), [ev(None, "x")]);
    }
}
