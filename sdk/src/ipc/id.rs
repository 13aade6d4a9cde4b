//! Safe ids: the part of an `/ipc` file name that comes from someone else.
//!
//! Request ids, batch ids and prompt ids arrive in JSON or NATS messages and
//! are interpolated into file names such as `spawn/result-<id>.json`. An id
//! that carried a path separator or a `..` could make us write outside the
//! IPC root. The rules are the upstream bridge's (contract §2.2), so an id
//! one side accepts the other accepts too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

/// The longest safe id, in bytes (a DNS-subdomain-sized name).
pub const MAX_ID_LEN: usize = 253;

/// Why an id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafeIdReason {
    /// The id is empty.
    Empty,
    /// The id is longer than [`MAX_ID_LEN`] bytes.
    TooLong {
        /// The id's length in bytes.
        len: usize,
    },
    /// The id contains `/`.
    Slash,
    /// The id contains `\`.
    Backslash,
    /// The id contains `..`.
    DotDot,
    /// The id contains a NUL byte, which no file name can hold. Upstream does
    /// not check this (the later `open` fails instead); refusing it here only
    /// moves that failure earlier, with a clearer message.
    Nul,
    /// The id is not equal to its own base name.
    NotBaseName,
}

impl std::fmt::Display for UnsafeIdReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("it is empty"),
            Self::TooLong { len } => {
                write!(f, "it is {len} bytes long, more than {MAX_ID_LEN}")
            }
            Self::Slash => f.write_str("it contains '/'"),
            Self::Backslash => f.write_str("it contains '\\'"),
            Self::DotDot => f.write_str("it contains '..'"),
            Self::Nul => f.write_str("it contains a NUL byte"),
            Self::NotBaseName => f.write_str("it is not a plain file name"),
        }
    }
}

/// An id that must not be used in a file name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unsafe IPC id {id:?}: {reason}")]
pub struct UnsafeId {
    /// The refused id (cut to its first 64 characters so a huge id cannot
    /// flood a log line).
    pub id: String,
    /// Why it was refused.
    pub reason: UnsafeIdReason,
}

/// Checks that `id` can be interpolated into an `/ipc` file name: 1 to 253
/// bytes, no `/`, no `\`, no `..`, and equal to its own base name.
///
/// ```
/// use agentpod_sdk::ipc::validate_id;
/// assert!(validate_id("1732800000123456789").is_ok());
/// assert!(validate_id("../../../tmp/evil").is_err());
/// ```
pub fn validate_id(id: &str) -> Result<(), UnsafeId> {
    let reason = if id.is_empty() {
        Some(UnsafeIdReason::Empty)
    } else if id.len() > MAX_ID_LEN {
        Some(UnsafeIdReason::TooLong { len: id.len() })
    } else if id.contains('/') {
        Some(UnsafeIdReason::Slash)
    } else if id.contains('\\') {
        Some(UnsafeIdReason::Backslash)
    } else if id.contains("..") {
        Some(UnsafeIdReason::DotDot)
    } else if id.contains('\0') {
        Some(UnsafeIdReason::Nul)
    } else if base_name(id) != id {
        Some(UnsafeIdReason::NotBaseName)
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(UnsafeId {
            id: id.chars().take(64).collect(),
            reason,
        }),
    }
}

/// The last element of a slash-separated path, the way Go's
/// `filepath.Base` computes it on Linux: trailing slashes are dropped, an
/// empty path is `.` and a path of only slashes is `/`. With the checks
/// above it only ever matters for ids the earlier rules already refuse; it
/// is kept so the rule set stays the upstream one, complete.
fn base_name(p: &str) -> &str {
    if p.is_empty() {
        return ".";
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/";
    }
    match trimmed.rfind('/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// A fresh IPC file id: the current Unix time in nanoseconds, in decimal, as
/// upstream uses for exec, spawn, message and schedule files. Strictly increasing within the process, so
/// calls started in the same nanosecond (or under a coarse clock) still get
/// distinct ids.
pub fn next_nanos_id() -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(now.max(last.saturating_add(1)))
        })
        // The closure always returns Some, so this is always Ok.
        .unwrap_or_else(|v| v);
    now.max(prev.saturating_add(1)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_unsafe_cases_are_refused() {
        let long = "a".repeat(254);
        let cases: [(&str, UnsafeIdReason); 8] = [
            ("", UnsafeIdReason::Empty),
            ("../../../tmp/evil", UnsafeIdReason::Slash),
            ("a/b", UnsafeIdReason::Slash),
            ("a\\b", UnsafeIdReason::Backslash),
            ("..", UnsafeIdReason::DotDot),
            ("x..y", UnsafeIdReason::DotDot),
            ("/etc/passwd", UnsafeIdReason::Slash),
            (&long, UnsafeIdReason::TooLong { len: 254 }),
        ];
        for (id, want) in cases {
            let err = validate_id(id).expect_err(id);
            assert_eq!(err.reason, want, "{id:?}");
        }
    }

    #[test]
    fn safe_ids_are_accepted() {
        let max = "b".repeat(253);
        for id in [
            max.as_str(),
            "1732800000123456789",
            "0",
            "1",
            "550e8400-e29b-41d4-a716-446655440000",
            "req_01.json-ish",
            // Upstream's rules accept a lone dot (it is its own base name).
            ".",
        ] {
            assert_eq!(validate_id(id), Ok(()), "{id:?}");
        }
    }

    #[test]
    fn nul_is_refused() {
        assert_eq!(validate_id("a\0b").unwrap_err().reason, UnsafeIdReason::Nul);
    }

    #[test]
    fn error_names_the_id_and_the_reason() {
        let msg = validate_id("x..y").unwrap_err().to_string();
        assert_eq!(msg, r#"unsafe IPC id "x..y": it contains '..'"#);
        let msg = validate_id(&"z".repeat(300)).unwrap_err().to_string();
        assert!(msg.contains("300 bytes long"), "{msg}");
        assert!(msg.len() < 140, "the id is cut in messages: {msg}");
    }

    #[test]
    fn base_name_matches_go() {
        assert_eq!(base_name(""), ".");
        assert_eq!(base_name("/"), "/");
        assert_eq!(base_name("a/b/"), "b");
        assert_eq!(base_name("abc"), "abc");
    }
}
