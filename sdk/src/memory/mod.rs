//! The memory service: its wire types, an HTTP client, and the text the
//! agent sees for memory results.
//!
//! The wire format is Sympozium's memory server (contract §6.2); agentpod's
//! `memory-server` speaks it and adds `POST /update`, `POST /forget` and
//! `GET /capabilities`. [`MemoryClient::capabilities`] tells which server
//! is on the other end, so a caller offers update and forget only when the
//! server has them.

mod client;
mod render;
mod types;

pub use client::{MemoryClient, MemoryError, MemoryErrorKind};
pub use render::{render_content, render_entries, render_for_context};
pub use types::{
    AgentVisibilityCount, ApiResponse, Capabilities, Entry, Evidence, FEATURE_FORGET,
    FEATURE_UPDATE, ForgetRequest, ForgetResult, ListQuery, SearchRequest, Stats, StoreRequest,
    StoreResult, UpdateRequest, UpdateResult, evidence_kind_rank,
};
