//! The agentpod operator: Kubernetes objects from `sympozium.ai/v1alpha1`
//! resources ([`render`], a pure function), the webhook rules
//! ([`validate`]), and the AgentRun handlers on the Kopf-style framework
//! ([`agentrun`]).

pub mod agentrun;
pub mod input;
pub mod render;
pub mod resources;
pub mod run;
pub mod validate;
