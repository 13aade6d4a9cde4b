//! Pre-pod checks that depend on other runs (contract §8.1): sub-agent
//! concurrency under the policy's `subagentPolicy.maxConcurrent`, and the
//! ensemble token budget. (Spawn depth and the `sub-agents` feature gate
//! need only the run and its policy, so they live in [`crate::validate`].)
//!
//! The decisions are pure functions over listed runs; [`check`] lists them.
//!
//! - **Concurrency is temporary.** A sub-agent run (`spec.parent`) waits,
//!   retried every [`CONCURRENCY_RETRY`], while `maxConcurrent` runs with the
//!   same parent (label `sympozium.ai/parent-run`) are active. Upstream fails
//!   the run instead, and counts every running run of the Agent, children or
//!   not; a slot frees as soon as a sibling ends, so failing would throw away
//!   work the parent asked for.
//! - **An exhausted token budget is permanent**, as upstream: the sum of
//!   `status.tokenUsage.totalTokens` over the ensemble's runs (label
//!   `sympozium.ai/ensemble`) reaching `tokenBudget.maxTokens` fails new runs,
//!   unless the budget's `action` is `warn`, which only logs.

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use serde_json::Value;
use tracing::warn;

use crate::render::Inputs;
use crate::resources::{AgentRun, ENSEMBLE_LABEL, Ensemble, PARENT_RUN_LABEL};

/// How often a sub-agent run waiting for a concurrency slot is retried.
pub const CONCURRENCY_RETRY: Duration = Duration::from_secs(5);

/// Phases in which a run holds a concurrency slot (its Pod is alive).
const ACTIVE_PHASES: [&str; 2] = ["Running", "AwaitingDelegate"];

/// What a check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Admit,
    /// Not yet: try again after `retry`.
    Wait {
        /// Why.
        reason: String,
        /// When to look again.
        retry: Duration,
    },
    /// Never: the run fails.
    Refuse(Refusal),
}

/// Why a run is refused for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The ensemble has spent its token budget.
    #[error("token budget exceeded: ensemble {ensemble} has used {used} of {max} tokens")]
    TokenBudget {
        /// The ensemble.
        ensemble: String,
        /// Tokens its runs used.
        used: i64,
        /// `tokenBudget.maxTokens`.
        max: i64,
    },
}

/// What the checks read of another run. Read leniently from JSON, so one
/// run with an odd status (written by another controller version) cannot
/// stop admission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Its name.
    pub name: String,
    /// `status.phase`.
    pub phase: String,
    /// `status.tokenUsage.totalTokens` (negative values read as 0).
    pub total_tokens: i64,
}

impl RunSummary {
    /// From a run's JSON (`metadata.name`, `status`).
    pub fn from_json(run: &Value) -> Self {
        let status = &run["status"];
        Self {
            name: run["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            phase: status["phase"].as_str().unwrap_or_default().to_owned(),
            total_tokens: status["tokenUsage"]["totalTokens"]
                .as_i64()
                .unwrap_or_default()
                .max(0),
        }
    }
}

/// Sub-agent concurrency: `siblings` are the runs labelled with the same
/// parent (the run itself may be among them and is not counted).
pub fn subagent_slots(inputs: &Inputs, siblings: &[RunSummary]) -> Verdict {
    let run = &inputs.run;
    let Some(parent) = &run.spec.parent else {
        return Verdict::Admit;
    };
    let Some(max) = inputs
        .policy
        .as_ref()
        .and_then(|p| p.spec.subagent_policy.as_ref())
        .and_then(|s| s.max_concurrent)
        .filter(|m| *m > 0)
    else {
        return Verdict::Admit;
    };
    let me = run.name_any();
    let active = siblings
        .iter()
        .filter(|s| s.name != me && ACTIVE_PHASES.contains(&s.phase.as_str()))
        .count();
    if active < max as usize {
        return Verdict::Admit;
    }
    Verdict::Wait {
        reason: format!(
            "{active} sub-agent runs of {} are active; the policy allows {max} at once",
            parent.run_name
        ),
        retry: CONCURRENCY_RETRY,
    }
}

/// The ensemble's token budget against the usage of its `runs` (the run
/// itself, if listed, is not counted).
pub fn token_budget(inputs: &Inputs, ensemble: &Ensemble, runs: &[RunSummary]) -> Verdict {
    let Some(budget) = ensemble.token_budget() else {
        return Verdict::Admit;
    };
    let Some(max) = budget.max_tokens.filter(|m| *m > 0) else {
        return Verdict::Admit;
    };
    let me = inputs.run.name_any();
    let used: i64 = runs
        .iter()
        .filter(|r| r.name != me)
        .map(|r| r.total_tokens)
        .sum();
    if used < max {
        return Verdict::Admit;
    }
    let refusal = Refusal::TokenBudget {
        ensemble: ensemble.name_any(),
        used,
        max,
    };
    if budget.action == "warn" {
        warn!(run = %me, error = %refusal, "token budget spent; action is warn, so the run goes ahead");
        return Verdict::Admit;
    }
    Verdict::Refuse(refusal)
}

/// The ensemble a run belongs to: its label, else its Agent's.
pub fn ensemble_of(inputs: &Inputs) -> Option<String> {
    let label = |m: &std::collections::BTreeMap<String, String>| m.get(ENSEMBLE_LABEL).cloned();
    inputs
        .run
        .metadata
        .labels
        .as_ref()
        .and_then(label)
        .or_else(|| {
            inputs
                .agent
                .as_ref()?
                .metadata
                .labels
                .as_ref()
                .and_then(label)
        })
        .filter(|e| !e.is_empty())
}

/// Runs both checks against the API; the first verdict that is not
/// [`Verdict::Admit`] wins.
pub async fn check(client: &Client, inputs: &Inputs) -> Result<Verdict, kube::Error> {
    let ns = inputs.run.namespace().unwrap_or_default();
    let runs: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &ApiResource::erase::<AgentRun>(&()));
    let list = |selector: String| {
        let runs = runs.clone();
        async move {
            let list = runs.list(&ListParams::default().labels(&selector)).await?;
            Ok::<_, kube::Error>(
                list.items
                    .iter()
                    .map(|o| RunSummary::from_json(&serde_json::to_value(o).unwrap_or_default()))
                    .collect::<Vec<_>>(),
            )
        }
    };
    if let Some(parent) = &inputs.run.spec.parent {
        let siblings = list(format!("{PARENT_RUN_LABEL}={}", parent.run_name)).await?;
        let v = subagent_slots(inputs, &siblings);
        if v != Verdict::Admit {
            return Ok(v);
        }
    }
    if let Some(name) = ensemble_of(inputs)
        && let Some(ensemble) = Api::<Ensemble>::namespaced(client.clone(), &ns)
            .get_opt(&name)
            .await?
    {
        let members = list(format!("{ENSEMBLE_LABEL}={name}")).await?;
        return Ok(token_budget(inputs, &ensemble, &members));
    }
    Ok(Verdict::Admit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{
        Membrane, ParentRef, PolicySpec, SharedMemory, SubagentPolicy, SympoziumPolicy, TokenBudget,
    };
    use serde_json::json;

    fn run(name: &str, phase: &str, tokens: i64) -> RunSummary {
        RunSummary::from_json(&json!({"metadata": {"name": name},
            "status": {"phase": phase, "tokenUsage": {"totalTokens": tokens}}}))
    }

    fn child_inputs(max: Option<u32>) -> Inputs {
        let mut me = AgentRun::new("child-3", "demo", Default::default());
        me.spec.parent = Some(ParentRef {
            run_name: "parent".into(),
            ..Default::default()
        });
        Inputs {
            run: me,
            policy: Some(SympoziumPolicy::new(
                "p",
                "demo",
                PolicySpec {
                    subagent_policy: Some(SubagentPolicy {
                        max_depth: None,
                        max_concurrent: max,
                    }),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
    }

    #[test]
    fn children_wait_for_a_slot() {
        let siblings = [
            run("child-1", "Running", 0),
            run("child-2", "AwaitingDelegate", 0),
            run("child-0", "Succeeded", 0),
            run("child-3", "Pending", 0),
        ];
        assert!(matches!(
            subagent_slots(&child_inputs(Some(2)), &siblings),
            Verdict::Wait { retry, .. } if retry == CONCURRENCY_RETRY
        ));
        assert_eq!(
            subagent_slots(&child_inputs(Some(3)), &siblings),
            Verdict::Admit
        );
        assert_eq!(
            subagent_slots(&child_inputs(None), &siblings),
            Verdict::Admit
        );
    }

    fn ensemble(max: i64, action: &str) -> Ensemble {
        Ensemble::new(
            "team",
            "demo",
            crate::resources::EnsembleSpec {
                shared_memory: Some(SharedMemory {
                    membrane: Some(Membrane {
                        token_budget: Some(TokenBudget {
                            max_tokens: Some(max),
                            max_tokens_per_run: None,
                            action: action.into(),
                        }),
                    }),
                }),
            },
        )
    }

    #[test]
    fn spent_budget_refuses_unless_warn() {
        let inputs = Inputs {
            run: AgentRun::new("next", "demo", Default::default()),
            ..Default::default()
        };
        let runs = [run("a", "Succeeded", 600), run("b", "Failed", 400)];
        assert_eq!(
            token_budget(&inputs, &ensemble(1000, ""), &runs),
            Verdict::Refuse(Refusal::TokenBudget {
                ensemble: "team".into(),
                used: 1000,
                max: 1000
            })
        );
        assert_eq!(
            token_budget(&inputs, &ensemble(1001, "halt"), &runs),
            Verdict::Admit
        );
        assert_eq!(
            token_budget(&inputs, &ensemble(10, "warn"), &runs),
            Verdict::Admit
        );
    }
}
