//! OpenTelemetry for agentpod binaries (contract §1.12): spans from
//! `tracing` exported over OTLP HTTP/protobuf, the run and tool metrics, and
//! W3C trace context for `/ipc` requests (`_meta`) and HTTP headers.
//!
//! Telemetry is on only when `SYMPOZIUM_OTEL_ENABLED=true` *and* an endpoint
//! is set ([`TelemetryConfig::is_active`]). Off, nothing here creates an
//! exporter, a thread or a connection: the metric helpers record into the
//! OpenTelemetry no-op meter and [`current_meta`] finds no span context.
//!
//! A binary calls [`Telemetry::start`] once, adds [`Telemetry::layer`] to its
//! `tracing` subscriber, and calls [`Telemetry::shutdown`] before it exits so
//! buffered spans leave the process (bounded; a missing collector never
//! holds the exit).
//!
//! # Why the exporter owns a small runtime
//!
//! The SDK's batch span processor and periodic metric reader run on their
//! own threads and drive the exporter with a plain executor, while reqwest's
//! async client needs a tokio reactor. The exporter's HTTP client therefore
//! hands each request to a one-worker tokio runtime of its own, created only
//! when telemetry is on. That also keeps export working while the binary's
//! main runtime shuts down.

mod metrics;

pub use metrics::{record_run, record_skill, record_tokens, record_tool};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use crate::envconf::Env;
use crate::wire::Meta;
use crate::wire::env::common as var;
use crate::wire::env::runner as vars;

/// How long an export request may take before it is abandoned.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often metrics are pushed while the process runs.
const METRIC_INTERVAL: Duration = Duration::from_secs(30);

/// Telemetry settings, read from the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// `SYMPOZIUM_OTEL_ENABLED`.
    pub enabled: bool,
    /// `SYMPOZIUM_OTEL_OTLP_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT`:
    /// the OTLP/HTTP base URL (`http://collector:4318`); `/v1/traces` and
    /// `/v1/metrics` are appended. A bare `host:port` gets `http://`.
    pub endpoint: Option<String>,
    /// `SYMPOZIUM_OTEL_SERVICE_NAME`, else `OTEL_SERVICE_NAME`, else the
    /// binary's default.
    pub service_name: String,
    /// `TRACEPARENT`, when it is a valid W3C value: the parent of the run.
    pub parent: Option<Meta>,
    /// `SYMPOZIUM_OTEL_RESOURCE_ATTRIBUTES` pairs.
    pub resource_attributes: Vec<(String, String)>,
}

impl TelemetryConfig {
    /// Reads the telemetry variables; `default_service` names the binary
    /// (e.g. `sympozium-agent-runner`). A bad `SYMPOZIUM_OTEL_ENABLED` is
    /// reported through `env`; an invalid `TRACEPARENT` is ignored, as
    /// upstream's propagator ignores it.
    pub fn from_env(env: &mut Env, default_service: &str) -> Self {
        let enabled = env.flag(vars::SYMPOZIUM_OTEL_ENABLED, false);
        let endpoint = env
            .string(var::SYMPOZIUM_OTEL_OTLP_ENDPOINT)
            .or_else(|| env.string(var::OTEL_EXPORTER_OTLP_ENDPOINT))
            .filter(|e| !e.trim().is_empty());
        let service_name = env
            .string(vars::SYMPOZIUM_OTEL_SERVICE_NAME)
            .or_else(|| env.string(var::OTEL_SERVICE_NAME))
            .unwrap_or_else(|| default_service.to_owned());
        let parent = env.string(var::TRACEPARENT).and_then(|tp| {
            let p = crate::wire::meta::TraceParent::parse(&tp)?;
            Some(Meta::new(p.trace_id, p.span_id, p.sampled))
        });
        let resource_attributes = env
            .string(vars::SYMPOZIUM_OTEL_RESOURCE_ATTRIBUTES)
            .map(|raw| {
                raw.split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .filter(|(k, _)| !k.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Self {
            enabled,
            endpoint,
            service_name,
            parent,
            resource_attributes,
        }
    }

    /// Whether telemetry is on: enabled and an endpoint set.
    pub fn is_active(&self) -> bool {
        self.enabled && self.endpoint.is_some()
    }

    /// The OTLP/HTTP URL of one signal (`traces`, `metrics`).
    fn signal_url(&self, signal: &str) -> Option<String> {
        let base = self.endpoint.as_deref()?.trim().trim_end_matches('/');
        let base = if base.contains("://") {
            base.to_owned()
        } else {
            format!("http://{base}")
        };
        Some(format!("{base}/v1/{signal}"))
    }
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// Telemetry is not enabled or has no endpoint.
    #[error(
        "telemetry is not enabled (SYMPOZIUM_OTEL_ENABLED=true and an OTLP endpoint are needed)"
    )]
    Disabled,
    /// The export runtime or HTTP client could not be built.
    #[error("telemetry set-up failed: {0}")]
    Setup(String),
}

/// Running telemetry: the tracer and meter providers.
#[derive(Debug, Clone)]
pub struct Telemetry {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    tracer_name: &'static str,
}

impl Telemetry {
    /// Starts the exporters for `config` (which must be active) and installs
    /// the global meter provider. `tracer_name` is the instrumentation scope
    /// (e.g. `sympozium/agent-runner`).
    pub fn start(
        config: &TelemetryConfig,
        tracer_name: &'static str,
    ) -> Result<Self, TelemetryError> {
        if !config.is_active() {
            return Err(TelemetryError::Disabled);
        }
        let (Some(traces_url), Some(metrics_url)) =
            (config.signal_url("traces"), config.signal_url("metrics"))
        else {
            return Err(TelemetryError::Disabled);
        };
        let client = ExportClient::new()?;

        let mut resource = Resource::builder().with_service_name(config.service_name.clone());
        for (k, v) in &config.resource_attributes {
            resource = resource.with_attribute(KeyValue::new(k.clone(), v.clone()));
        }
        let resource = resource.build();

        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client.clone())
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(traces_url)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| TelemetryError::Setup(e.to_string()))?;
        let tracer_provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(spans).build())
            .with_resource(resource.clone())
            .build();

        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(metrics_url)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| TelemetryError::Setup(e.to_string()))?;
        let meter_provider = SdkMeterProvider::builder()
            .with_reader(
                PeriodicReader::builder(metrics)
                    .with_interval(METRIC_INTERVAL)
                    .build(),
            )
            .with_resource(resource)
            .build();
        opentelemetry::global::set_meter_provider(meter_provider.clone());

        Ok(Self {
            tracer_provider,
            meter_provider,
            tracer_name,
        })
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans.
    pub fn layer<S>(&self) -> Box<dyn Layer<S> + Send + Sync + 'static>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let tracer = self.tracer_provider.tracer(self.tracer_name);
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_tracked_inactivity(false)
            .with_threads(false)
            .boxed()
    }

    /// Exports what is buffered and stops the exporters, waiting at most
    /// `timeout` in total. Blocks: call it from a blocking context (e.g.
    /// `tokio::task::spawn_blocking`).
    pub fn shutdown(&self, timeout: Duration) {
        let started = std::time::Instant::now();
        if let Err(e) = self.tracer_provider.shutdown_with_timeout(timeout) {
            tracing::warn!(error = %e, "could not export every span");
        }
        let left = timeout.saturating_sub(started.elapsed());
        if !left.is_zero()
            && let Err(e) = self.meter_provider.force_flush()
        {
            tracing::warn!(error = %e, "could not export the metrics");
        }
    }
}

/// The trace context of the current `tracing` span, for `_meta` and
/// `traceparent` headers; `None` when telemetry is off or no span is active.
pub fn current_meta() -> Option<Meta> {
    meta_of(&tracing::Span::current())
}

/// The trace context of `span`, when it has a valid one.
pub fn meta_of(span: &tracing::Span) -> Option<Meta> {
    let cx = span.context();
    let otel_span = cx.span();
    let sc = otel_span.span_context();
    sc.is_valid().then(|| {
        Meta::new(
            sc.trace_id().to_string(),
            sc.span_id().to_string(),
            sc.is_sampled(),
        )
    })
}

/// Makes the remote context `parent` (e.g. from `TRACEPARENT`) the parent
/// of `span`. Does nothing when `parent` is not valid or telemetry is off.
pub fn set_parent(span: &tracing::Span, parent: &Meta) {
    let Some(tp) = parent.parsed() else {
        return;
    };
    let (Ok(trace_id), Ok(span_id)) = (
        TraceId::from_hex(&tp.trace_id),
        SpanId::from_hex(&tp.span_id),
    ) else {
        return;
    };
    let flags = if tp.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let sc = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    // Fails only when the span is already started or telemetry is off.
    let _ = span.set_parent(Context::new().with_remote_span_context(sc));
}

/// Sends the exporters' requests on a one-worker runtime of its own (see the
/// module docs). The runtime is shut down without blocking when the last
/// exporter lets go of it.
#[derive(Debug, Clone)]
struct ExportClient {
    http: reqwest::Client,
    runtime: Arc<ExportRuntime>,
}

#[derive(Debug)]
struct ExportRuntime(Option<tokio::runtime::Runtime>);

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        // A plain drop would block, and panics inside an async context.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl ExportClient {
    fn new() -> Result<Self, TelemetryError> {
        let http = crate::llm::http::http_client().map_err(TelemetryError::Setup)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-export")
            .enable_all()
            .build()
            .map_err(|e| TelemetryError::Setup(format!("export runtime: {e}")))?;
        Ok(Self {
            http,
            runtime: Arc::new(ExportRuntime(Some(runtime))),
        })
    }
}

#[async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let Some(rt) = self.runtime.0.as_ref() else {
            return Err("export runtime stopped".into());
        };
        let request = reqwest::Request::try_from(request)?;
        let http = self.http.clone();
        let task = rt.spawn(async move {
            let response = tokio::time::timeout(EXPORT_TIMEOUT, http.execute(request))
                .await
                .map_err(|_| "OTLP export timed out")??;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            let mut out = http::Response::new(body);
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok::<_, HttpError>(out)
        });
        task.await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> TelemetryConfig {
        let mut env = Env::from_map(vars.iter().copied());
        let c = TelemetryConfig::from_env(&mut env, "svc");
        env.finish().unwrap();
        c
    }

    #[test]
    fn needs_flag_and_endpoint() {
        assert!(!config(&[]).is_active());
        assert!(!config(&[("SYMPOZIUM_OTEL_ENABLED", "true")]).is_active());
        assert!(!config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]).is_active());
        let c = config(&[
            ("SYMPOZIUM_OTEL_ENABLED", "true"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("SYMPOZIUM_OTEL_OTLP_ENDPOINT", "collector:4318/"),
        ]);
        assert!(c.is_active());
        assert_eq!(
            c.signal_url("traces").unwrap(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(c.service_name, "svc");
    }

    #[test]
    fn reads_parent_and_names() {
        let c = config(&[
            (
                "TRACEPARENT",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("OTEL_SERVICE_NAME", "b"),
            ("SYMPOZIUM_OTEL_SERVICE_NAME", "a"),
            (
                "SYMPOZIUM_OTEL_RESOURCE_ATTRIBUTES",
                "k8s.ns=x, bad ,team=y",
            ),
        ]);
        assert_eq!(
            c.parent.unwrap().trace_id,
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(c.service_name, "a");
        assert_eq!(c.resource_attributes.len(), 2);
        assert!(config(&[("TRACEPARENT", "junk")]).parent.is_none());
    }

    #[test]
    fn no_context_without_telemetry() {
        assert!(current_meta().is_none());
    }
}
