//! Delegation and sub-agent batches over `/ipc/spawn` (contract §2.1), and
//! [`wait_json`], the result-file waiter they (and the MCP client) share.
//!
//! A request is written atomically (staged outside `/ipc/spawn`), then the
//! caller waits for its result file on the sdk watcher, for as long as the
//! run has left. On success both files are removed, as upstream does; on a
//! timeout they are left in place (the controller may still be working on
//! the request, and the files tell an operator what was pending).

mod wait;

pub use wait::{RESULT_RESCAN, WaitError, wait_json};

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::ipc::{IpcRoot, UnsafeId, WriteError, next_nanos_id, validate_id};
use crate::wire::{DelegateResult, SpawnRequest, SubagentBatchResult, SubagentSpawnRequest};

pub(crate) use wait::remove_quietly;

/// Why a spawn produced no result.
#[derive(Debug, Error)]
pub enum SpawnError {
    /// The id is not safe in a file name (never, for generated ids).
    #[error(transparent)]
    UnsafeId(#[from] UnsafeId),
    /// The request could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The request file.
        path: PathBuf,
        /// The write's error.
        #[source]
        source: WriteError,
    },
    /// No result (timeout, watcher failure). The request stays in place.
    #[error(transparent)]
    Wait(#[from] WaitError),
}

impl SpawnError {
    /// True when the wait ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Wait(w) if w.is_timeout())
    }
}

/// Writes spawn requests and waits for their results.
#[derive(Debug, Clone)]
pub struct SpawnClient {
    ipc: IpcRoot,
}

impl SpawnClient {
    /// A client for the IPC volume `ipc`.
    pub fn new(ipc: IpcRoot) -> Self {
        Self { ipc }
    }

    /// Asks the controller to run `request` as another persona's AgentRun:
    /// writes `/ipc/spawn/request-<id>.json` and waits up to `wait` for
    /// `result-<id>.json`. The client sets `request_id` to a fresh id.
    pub async fn delegate(
        &self,
        mut request: SpawnRequest,
        wait: Duration,
    ) -> Result<DelegateResult, SpawnError> {
        let id = next_nanos_id();
        validate_id(&id)?;
        request.request_id.clone_from(&id);
        let (req, res) = (self.ipc.spawn_request(&id), self.ipc.spawn_result(&id));
        self.round_trip(&request, req, res, wait).await
    }

    /// Asks the controller to run a batch of sub-agents: writes
    /// `/ipc/spawn/subagent-request-<batchId>.json` and waits up to `wait`
    /// for `subagent-result-<batchId>.json`. An empty `batch_id` is set to a
    /// fresh id.
    pub async fn subagents(
        &self,
        mut request: SubagentSpawnRequest,
        wait: Duration,
    ) -> Result<SubagentBatchResult, SpawnError> {
        if request.batch_id.is_empty() {
            request.batch_id = next_nanos_id();
        }
        validate_id(&request.batch_id)?;
        let (req, res) = (
            self.ipc.subagent_request(&request.batch_id),
            self.ipc.subagent_result(&request.batch_id),
        );
        self.round_trip(&request, req, res, wait).await
    }

    async fn round_trip<Q, R>(
        &self,
        request: &Q,
        req_path: PathBuf,
        res_path: PathBuf,
        wait: Duration,
    ) -> Result<R, SpawnError>
    where
        Q: serde::Serialize + Sync,
        R: serde::de::DeserializeOwned + Send + 'static,
    {
        // A stale result under this name (never, with fresh ids) would
        // answer the new request; make sure there is none.
        remove_quietly(&res_path);
        // Upstream creates the directory too; a failure shows in the write.
        let _ = std::fs::create_dir_all(self.ipc.spawn());
        self.ipc
            .write_json_atomic(&req_path, request)
            .map_err(|source| SpawnError::Write {
                path: req_path.clone(),
                source,
            })?;
        tracing::info!(request = %req_path.display(), "wrote spawn request; waiting for its result");
        let result = wait_json::<R>(&res_path, wait).await?;
        remove_quietly(&req_path);
        remove_quietly(&res_path);
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{BatchStatus, DelegateStatus, SubagentTask};

    fn ipc() -> (tempfile::TempDir, IpcRoot) {
        let t = tempfile::tempdir().unwrap();
        let ipc = IpcRoot::new(t.path());
        ipc.create_dirs().unwrap();
        (t, ipc)
    }

    /// Answers the first request file in `/ipc/spawn` once it appears.
    fn responder(
        ipc: IpcRoot,
        prefix: &'static str,
        answer: impl Fn(&str) -> String + Send + 'static,
    ) {
        tokio::spawn(async move {
            let name = loop {
                let found = std::fs::read_dir(ipc.spawn())
                    .unwrap()
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .find(|n| n.starts_with(prefix));
                if let Some(n) = found {
                    break n;
                }
                tokio::task::yield_now().await;
            };
            let id = name
                .strip_prefix(prefix)
                .unwrap()
                .strip_suffix(".json")
                .unwrap();
            let result = if prefix == "request-" {
                ipc.spawn_result(id)
            } else {
                ipc.subagent_result(id)
            };
            std::fs::write(result, answer(id)).unwrap();
        });
    }

    #[tokio::test]
    async fn delegation_round_trip_cleans_up() {
        let (_t, ipc) = ipc();
        responder(ipc.clone(), "request-", |id| {
            format!(r#"{{"requestId":"{id}","status":"success","response":"done"}}"#)
        });
        let c = SpawnClient::new(ipc.clone());
        let r = c
            .delegate(
                SpawnRequest::delegate("", "reviewer", "check it", "team"),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(r.status, DelegateStatus::Success);
        assert_eq!(r.response, "done");
        assert_eq!(std::fs::read_dir(ipc.spawn()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn subagent_timeout_leaves_the_request() {
        let (_t, ipc) = ipc();
        let c = SpawnClient::new(ipc.clone());
        let mut req = SubagentSpawnRequest {
            batch_id: "b1".into(),
            ..Default::default()
        };
        req.tasks.push(SubagentTask::new("a", "x"));
        let e = c
            .subagents(req, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(e.is_timeout(), "{e}");
        assert!(ipc.subagent_request("b1").exists());

        // The responder answers the first request it sees; remove b1 first.
        std::fs::remove_file(ipc.subagent_request("b1")).unwrap();
        responder(ipc.clone(), "subagent-request-", |id| {
            format!(r#"{{"batchId":"{id}","status":"partial","results":[]}}"#)
        });
        let mut req = SubagentSpawnRequest {
            batch_id: "b2".into(),
            ..Default::default()
        };
        req.tasks.push(SubagentTask::new("a", "x"));
        let r = c.subagents(req, Duration::from_secs(10)).await.unwrap();
        assert_eq!(r.status, BatchStatus::Partial);
    }
}
