//! The metrics of contract §1.12. Instruments come from the global meter
//! provider the first time one is used, so [`super::Telemetry::start`] must
//! run before (binaries start telemetry before anything else); without it
//! they are OpenTelemetry's no-op instruments.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};

const SCOPE: &str = "sympozium/agent-runner";

struct Instruments {
    runs: Counter<u64>,
    run_duration: Histogram<f64>,
    input_tokens: Counter<u64>,
    output_tokens: Counter<u64>,
    tool_invocations: Counter<u64>,
    skill_duration: Histogram<f64>,
}

fn instruments() -> &'static Instruments {
    static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
    INSTRUMENTS.get_or_init(|| {
        let meter = opentelemetry::global::meter(SCOPE);
        Instruments {
            runs: meter
                .u64_counter("sympozium.agent.runs")
                .with_description("Agent runs, by outcome")
                .build(),
            run_duration: meter
                .f64_histogram("sympozium.agent.run.duration")
                .with_unit("ms")
                .with_description("Agent run duration")
                .build(),
            input_tokens: meter
                .u64_counter("gen_ai.usage.input_tokens")
                .with_description("Prompt tokens")
                .build(),
            output_tokens: meter
                .u64_counter("gen_ai.usage.output_tokens")
                .with_description("Completion tokens")
                .build(),
            tool_invocations: meter
                .u64_counter("sympozium.tool.invocations")
                .with_description("Tool calls, by tool and outcome")
                .build(),
            skill_duration: meter
                .f64_histogram("sympozium.skill.duration")
                .with_unit("ms")
                .with_description("Skill sidecar command duration")
                .build(),
        }
    })
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One finished run: `sympozium.agent.runs` and `sympozium.agent.run.duration`.
pub fn record_run(instance: &str, namespace: &str, model: &str, status: &str, took: Duration) {
    let attrs = [
        KeyValue::new("instance", instance.to_owned()),
        KeyValue::new("status", status.to_owned()),
        KeyValue::new("namespace", namespace.to_owned()),
        KeyValue::new("model", model.to_owned()),
    ];
    let i = instruments();
    i.runs.add(1, &attrs);
    i.run_duration.record(millis(took), &attrs);
}

/// Tokens of one model turn.
pub fn record_tokens(model: &str, input: u64, output: u64) {
    let attrs = [KeyValue::new("model", model.to_owned())];
    let i = instruments();
    i.input_tokens.add(input, &attrs);
    i.output_tokens.add(output, &attrs);
}

/// One tool call: `sympozium.tool.invocations` with status `success|error`.
pub fn record_tool(tool: &str, is_error: bool) {
    let status = if is_error { "error" } else { "success" };
    instruments().tool_invocations.add(
        1,
        &[
            KeyValue::new("tool_name", tool.to_owned()),
            KeyValue::new("status", status),
        ],
    );
}

/// One command run in a skill sidecar.
pub fn record_skill(skill: &str, took: Duration) {
    instruments().skill_duration.record(
        millis(took),
        &[KeyValue::new("skill_name", skill.to_owned())],
    );
}
