//! The end of a run (contract §1.9): `result.json`, then `/ipc/done`, then
//! the stdout marker, in that order, so every reader sees the result before
//! the sidecars are told to stop.

use std::io::{self, Write};

use crate::ipc::IpcRoot;
use crate::wire::{AgentResult, Metrics, marker};

/// Writes a run's final outputs under one IPC root.
#[derive(Debug, Clone)]
pub struct RunOutputs {
    ipc: IpcRoot,
}

/// What failed while writing the outputs.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file could not be written.
    #[error(transparent)]
    Write(#[from] crate::ipc::WriteError),
    /// The marker could not be printed.
    #[error("could not print the result marker: {0}")]
    Stdout(#[from] io::Error),
}

impl RunOutputs {
    /// Outputs under `ipc`.
    pub fn new(ipc: IpcRoot) -> Self {
        Self { ipc }
    }

    /// Writes `result.json` (indented, atomically) and `/ipc/done`, then
    /// prints the result marker to `stdout`. All steps are attempted even
    /// when one fails; the first failure is returned.
    pub fn finish(&self, result: &AgentResult, stdout: &mut dyn Write) -> Result<(), OutputError> {
        let files = self.write_files(result);
        marker::write_result_marker(stdout, result)?;
        stdout.flush()?;
        files
    }

    /// The fatal path (configuration errors): the error result and
    /// `/ipc/done`, but no stdout marker, as upstream.
    pub fn fatal(&self, message: &str) -> Result<(), OutputError> {
        self.write_files(&fatal_result(message))
    }

    fn write_files(&self, result: &AgentResult) -> Result<(), OutputError> {
        let json = serde_json::to_vec_pretty(result).unwrap_or_default();
        let first = self.ipc.write_atomic(&self.ipc.result(), &json);
        let done = self.ipc.write_atomic(&self.ipc.done(), b"done");
        first.and(done).map_err(OutputError::from)
    }
}

/// The result of a fatal configuration error.
pub fn fatal_result(message: &str) -> AgentResult {
    AgentResult::error(message, Metrics::default())
}
