//! agentpod SDK: the in-Pod wire contract shared by every agentpod binary, and
//! the building blocks that agent developers and SkillPack authors link.
//!
//! - [`wire`]: every `/ipc` document, the NATS event envelope and subjects,
//!   env var names, exit codes and the stdout result marker, as typed values.
//! - [`ipc`]: the `/ipc` directory layout, id validation, atomic writes and a
//!   directory watcher that wakes on inotify and backs it up with a rescan.

pub mod ipc;
pub mod wire;
