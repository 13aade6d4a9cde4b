//! The agentpod operator: Kubernetes objects from `sympozium.ai/v1alpha1`
//! resources ([`render`], a pure function), the webhook rules
//! ([`validate`]), and the AgentRun handlers on the Kopf-style framework
//! ([`agentrun`]).

pub mod admission;
pub mod agentrun;
pub mod documents;
pub mod events;
pub mod input;
pub mod names;
pub mod render;
pub mod resources;
pub mod run;
pub mod schema;
pub mod task_mode;
pub mod validate;
