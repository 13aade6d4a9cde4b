//! agentpod-conformance: black-box scenarios for the Sympozium in-Pod
//! contract (`docs/contract.md`) and the player that runs
//! them against any implementation: binaries on this machine or images
//! through podman.
//!
//! | module | what |
//! |---|---|
//! | [`scenario`] | the scenario language (YAML files under `scenarios/`) |
//! | [`matcher`] | JSON-pointer matchers used by checks |
//! | [`impls`] | the implementations under test |
//! | [`world`] | a scenario's Pod world: directories, NATS, scripted model, MCP servers |
//! | [`process`] | starting, signalling and killing the processes |
//! | [`play`] | playing one scenario to a verdict |
//! | [`report`] | expected failures, progress, summary, JUnit XML |
//! | [`cli`] | the `agentpod-conformance` command |

pub mod cli;
pub mod impls;
pub mod matcher;
pub mod play;
pub mod process;
pub mod report;
pub mod scenario;
pub mod world;
