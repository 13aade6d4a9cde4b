//! The on-disk spool: where events wait while NATS is unreachable.
//!
//! It lives on the `/ipc` volume (default `<ipc>/.bridge-spool/`), a
//! hidden directory directly under the root that no reader watches, so it
//! survives a restart of the bridge container (the Pod's `emptyDir` stays)
//! and its files are never mistaken for IPC documents.
//!
//! One file per event, `<seq>.ev` (20 digits, so names sort in sequence
//! order): a JSON header line, then the envelope bytes. Files are written
//! atomically (hidden temp name in the same directory, then rename), so a
//! crash leaves whole entries or none; leftover temp files are removed on
//! open. The spool is bounded in events and in bytes; the caller asks
//! [`Spool::has_room`] before writing and applies backpressure when not.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::triggers::OutEvent;

/// A spool operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Filesystem error.
    #[error("spool {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Atomic write failed.
    #[error(transparent)]
    Write(#[from] agentpod_sdk::ipc::WriteError),
    /// An entry is not in our format.
    #[error("spool entry {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Bounds of the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLimits {
    /// Most bytes on disk.
    pub max_bytes: u64,
    /// Most events.
    pub max_events: usize,
}

/// An entry found on disk at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spooled {
    /// Sequence number (order).
    pub seq: u64,
    /// Size on disk.
    pub size: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    subject: String,
    msg_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
    #[serde(default)]
    source: String,
}

/// The spool directory and its accounting.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limits: SpoolLimits,
    bytes: u64,
    events: usize,
    next_seq: u64,
}

/// First sequence number of an empty spool.
const FIRST_SEQ: u64 = 1;
const SUFFIX: &str = ".ev";

impl Spool {
    /// Opens (creating) the spool and returns the entries already there, in
    /// order.
    pub fn open(dir: &Path, limits: SpoolLimits) -> Result<(Self, Vec<Spooled>), SpoolError> {
        use std::os::unix::fs::DirBuilderExt;
        let io_err = |path: &Path, source| SpoolError::Io {
            path: path.to_path_buf(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .map_err(|e| io_err(dir, e))?;
        let mut found = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
            let entry = entry.map_err(|e| io_err(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
                continue;
            }
            let Some(seq) = name
                .strip_suffix(SUFFIX)
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let size = entry.metadata().map_err(|e| io_err(dir, e))?.len();
            found.push(Spooled { seq, size });
        }
        found.sort_by_key(|s| s.seq);
        let spool = Self {
            dir: dir.to_path_buf(),
            limits,
            bytes: found.iter().map(|s| s.size).sum(),
            events: found.len(),
            next_seq: found.last().map_or(FIRST_SEQ, |s| s.seq + 1),
        };
        Ok((spool, found))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Events on disk.
    pub fn events(&self) -> usize {
        self.events
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether one more event may be written. An empty spool always takes
    /// one, so an event larger than the byte bound cannot block forever.
    pub fn has_room(&self) -> bool {
        self.events == 0
            || (self.events < self.limits.max_events && self.bytes < self.limits.max_bytes)
    }

    /// A new sequence number, after every one handed out or found.
    pub fn next_seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}{SUFFIX}"))
    }

    /// Writes event `seq`; returns its size on disk.
    pub fn write(&mut self, seq: u64, ev: &OutEvent) -> Result<u64, SpoolError> {
        let header = Header {
            subject: ev.subject.clone(),
            msg_id: ev.msg_id.clone(),
            traceparent: ev.traceparent.clone(),
            source: ev.source.clone(),
        };
        // A struct of strings always serialises.
        let mut buf = serde_json::to_vec(&header).unwrap_or_default();
        buf.push(b'\n');
        buf.extend_from_slice(&ev.payload);
        agentpod_sdk::ipc::write_atomic(&self.path(seq), &buf, None)?;
        let size = buf.len() as u64;
        self.bytes += size;
        self.events += 1;
        Ok(size)
    }

    /// Reads event `seq`.
    pub fn read(&self, seq: u64) -> Result<OutEvent, SpoolError> {
        let path = self.path(seq);
        let buf = fs::read(&path).map_err(|source| SpoolError::Io {
            path: path.clone(),
            source,
        })?;
        let corrupt = |reason: String| SpoolError::Corrupt {
            path: path.clone(),
            reason,
        };
        let nl = buf
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| corrupt("no header line".into()))?;
        let header: Header =
            serde_json::from_slice(&buf[..nl]).map_err(|e| corrupt(e.to_string()))?;
        Ok(OutEvent {
            subject: header.subject,
            msg_id: header.msg_id,
            traceparent: header.traceparent,
            payload: Bytes::copy_from_slice(&buf[nl + 1..]),
            source: header.source,
        })
    }

    /// Removes event `seq` of `size` bytes (published, or given up on).
    pub fn remove(&mut self, seq: u64, size: u64) {
        let path = self.path(seq);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot remove spool entry")
            }
        }
        self.bytes = self.bytes.saturating_sub(size);
        self.events = self.events.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: u32) -> OutEvent {
        OutEvent {
            subject: "sympozium.schedule.upsert".into(),
            msg_id: format!("r/schedules/{i}@0"),
            traceparent: i.is_multiple_of(2).then(|| "00-x".into()),
            payload: Bytes::from(format!(r#"{{"i":{i}}}"#)),
            source: format!("schedules/{i}"),
        }
    }

    #[test]
    fn round_trip_order_and_reopen() {
        let t = tempfile::tempdir().unwrap();
        let limits = SpoolLimits {
            max_bytes: 1 << 20,
            max_events: 3,
        };
        let (mut s, found) = Spool::open(&t.path().join("sp"), limits).unwrap();
        assert!(found.is_empty());
        let mut sizes = Vec::new();
        for i in 0..3 {
            let seq = s.next_seq();
            sizes.push((seq, s.write(seq, &ev(i)).unwrap()));
        }
        assert!(!s.has_room());
        assert_eq!(s.read(sizes[1].0).unwrap(), ev(1));
        s.remove(sizes[0].0, sizes[0].1);
        assert!(s.has_room());
        // A crash leftover is cleaned; entries come back in order.
        fs::write(t.path().join("sp/.x.tmp"), b"junk").unwrap();
        let (mut s2, found) = Spool::open(&t.path().join("sp"), limits).unwrap();
        assert_eq!(found.iter().map(|f| f.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(s2.events(), 2);
        assert_eq!(s2.next_seq(), 4);
        assert!(!t.path().join("sp/.x.tmp").exists());
    }

    #[test]
    fn byte_bound_and_empty_exception() {
        let t = tempfile::tempdir().unwrap();
        let limits = SpoolLimits {
            max_bytes: 10,
            max_events: 100,
        };
        let (mut s, _) = Spool::open(t.path(), limits).unwrap();
        assert!(s.has_room());
        let seq = s.next_seq();
        s.write(seq, &ev(1)).unwrap();
        assert!(!s.has_room(), "over the byte bound after one event");
        assert!(s.bytes() > 10);
    }
}
