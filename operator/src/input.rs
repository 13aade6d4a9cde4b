//! Reading resources from multi-document YAML and grouping them per run.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize;
use serde_json::Value;

use crate::render::Inputs;
use crate::resources::{Agent, AgentRun, McpServer, SkillPack, SympoziumPolicy};

/// A document that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Not YAML.
    #[error("document {index}: {source}")]
    Yaml {
        /// 0-based document index.
        index: usize,
        /// The parser's complaint.
        source: serde_yaml::Error,
    },
    /// A known kind with a bad shape.
    #[error("document {index} ({kind}): {source}")]
    Shape {
        /// 0-based document index.
        index: usize,
        /// Its kind.
        kind: String,
        /// What is wrong.
        source: serde_json::Error,
    },
}

/// Every resource found, by kind.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    /// AgentRuns.
    pub runs: Vec<AgentRun>,
    /// Agents.
    pub agents: Vec<Agent>,
    /// SkillPacks.
    pub skill_packs: Vec<SkillPack>,
    /// Policies.
    pub policies: Vec<SympoziumPolicy>,
    /// MCPServers.
    pub mcp_servers: Vec<McpServer>,
    /// Secrets (for `providerHeadersSecretRef`).
    pub secrets: Vec<Secret>,
    /// `Model` CRs (for `modelRef`), as JSON.
    pub models: Vec<Value>,
}

/// The string data of a Secret (`data` decoded, `stringData` on top);
/// values that are not UTF-8 are skipped.
pub fn secret_strings(secret: &Secret) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = secret
        .data
        .iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), String::from_utf8(v.0.clone()).ok()?)))
        .collect();
    out.extend(secret.string_data.clone().unwrap_or_default());
    out
}

/// The endpoint of a `Model` CR when it is ready (`status.phase: Ready`
/// or a `Ready` condition that is `True`) and has `status.endpoint`.
pub fn model_endpoint(model: &Value) -> Option<String> {
    let status = &model["status"];
    let ready = status["phase"] == "Ready"
        || status["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
    let endpoint = status["endpoint"].as_str().filter(|e| !e.is_empty())?;
    ready.then(|| endpoint.to_owned())
}

impl Bundle {
    /// Parses multi-document YAML; documents of other kinds are ignored.
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let mut b = Self::default();
        for (index, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let v = Value::deserialize(doc).map_err(|source| InputError::Yaml { index, source })?;
            if v.is_null() {
                continue;
            }
            let kind = v["kind"].as_str().unwrap_or_default().to_owned();
            let shape = |source| InputError::Shape {
                index,
                kind: kind.clone(),
                source,
            };
            match kind.as_str() {
                "AgentRun" => b.runs.push(serde_json::from_value(v).map_err(shape)?),
                "Agent" => b.agents.push(serde_json::from_value(v).map_err(shape)?),
                "SkillPack" => b
                    .skill_packs
                    .push(serde_json::from_value(v).map_err(shape)?),
                "SympoziumPolicy" => b.policies.push(serde_json::from_value(v).map_err(shape)?),
                "MCPServer" => b
                    .mcp_servers
                    .push(serde_json::from_value(v).map_err(shape)?),
                "Secret" => b.secrets.push(serde_json::from_value(v).map_err(shape)?),
                "Model" => b.models.push(v),
                _ => {}
            }
        }
        Ok(b)
    }

    /// Adds another bundle's resources.
    pub fn extend(&mut self, other: Bundle) {
        self.runs.extend(other.runs);
        self.agents.extend(other.agents);
        self.skill_packs.extend(other.skill_packs);
        self.policies.extend(other.policies);
        self.mcp_servers.extend(other.mcp_servers);
        self.secrets.extend(other.secrets);
        self.models.extend(other.models);
    }

    /// The inputs of `run`: its Agent (by `agentRef`), the Agent's policy,
    /// and every SkillPack and MCPServer of the bundle.
    pub fn inputs_for(&self, run: &AgentRun) -> Inputs {
        let agent = self
            .agents
            .iter()
            .find(|a| a.metadata.name.as_deref() == Some(run.spec.agent_ref.as_str()))
            .cloned();
        let policy = agent.as_ref().and_then(|a| {
            self.policies
                .iter()
                .find(|p| {
                    !a.spec.policy_ref.is_empty()
                        && p.metadata.name.as_deref() == Some(a.spec.policy_ref.as_str())
                })
                .cloned()
        });
        Inputs {
            run: run.clone(),
            agent,
            skill_packs: self.skill_packs.clone(),
            policy,
            mcp_servers: self.mcp_servers.clone(),
            provider_headers_secret: self
                .secrets
                .iter()
                .find(|s| {
                    !run.spec.model.provider_headers_secret_ref.is_empty()
                        && s.metadata.name.as_deref()
                            == Some(run.spec.model.provider_headers_secret_ref.as_str())
                })
                .map(secret_strings)
                .unwrap_or_default(),
            model_endpoint: self
                .models
                .iter()
                .find(|m| {
                    !run.spec.model.model_ref.is_empty()
                        && m["metadata"]["name"] == run.spec.model.model_ref.as_str()
                })
                .and_then(model_endpoint),
        }
    }
}
