//! Dev-only test kit shared by every agentpod test: a real `nats-server`
//! with JetStream ([`NatsServer`]), a temp `/ipc` volume ([`TempIpc`]), a
//! scripted OpenAI/Anthropic-compatible LLM server ([`llm::ScriptedLlm`]),
//! deadline-based waiting ([`eventually`]) so no test sleeps, and child
//! processes that never outlive a test ([`KillOnDrop`], [`free_port`]).

mod ipc;
pub mod llm;
mod nats;
mod poll;
mod proc;
mod tls;

pub use ipc::TempIpc;
pub use llm::{Script, ScriptedLlm, Turn};
pub use nats::{NatsServer, nats_server_bin, workspace_root};
pub use poll::{eventually, wait_for_file};
pub use proc::{KillOnDrop, free_port};
pub use tls::install_crypto_provider;
