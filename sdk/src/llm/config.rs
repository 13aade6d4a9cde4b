//! Provider settings and the factory that turns them into a [`Provider`].
//!
//! Nothing here reads the environment: the runner's `Config::from_env` fills
//! a [`ProviderConfig`] (the variable names in the doc comments are the
//! upstream ones it reads), tests build one directly.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use super::Provider;
use super::anthropic::AnthropicProvider;
use super::http::{Transport, http_client};
use super::openai::OpenAiProvider;
use super::retry::Backoff;

/// The provider used when `MODEL_PROVIDER` is empty.
pub const DEFAULT_PROVIDER: &str = "openai";
/// The model used when `MODEL_NAME` is empty.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
/// The Azure OpenAI API version used when `AZURE_OPENAI_API_VERSION` is empty.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-06-01";
/// OpenAI's endpoint, for OpenAI-compatible providers without a default.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Anthropic's endpoint.
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// The `anthropic-version` header sent with every Messages request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Providers served from inside the cluster or the machine: longer default
/// timeout, fewer retries (upstream `llmprovider.go`).
const LOCAL_PROVIDERS: &[&str] = &[
    "ollama",
    "lm-studio",
    "llama-server",
    "unsloth",
    "vllm",
    "llamacpp",
    "local",
];

/// Whether `provider` (any case) is one of the local providers: `ollama`,
/// `lm-studio`, `llama-server`, `unsloth`, `vllm`, `llamacpp`, `local`.
pub fn is_local_provider(provider: &str) -> bool {
    LOCAL_PROVIDERS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(provider.trim()))
}

/// The base URL a provider uses when `MODEL_BASE_URL` is empty, if it has
/// one of its own (`anthropic`, `openai` and the local servers with a
/// well-known port). Other OpenAI-compatible names fall back to OpenAI.
pub fn default_base_url(provider: &str) -> Option<&'static str> {
    match provider.trim().to_ascii_lowercase().as_str() {
        "openai" => Some(OPENAI_BASE_URL),
        "anthropic" => Some(ANTHROPIC_BASE_URL),
        "ollama" => Some("http://ollama.default.svc:11434/v1"),
        "lm-studio" => Some("http://localhost:1234/v1"),
        "llama-server" | "unsloth" => Some("http://localhost:8080/v1"),
        _ => None,
    }
}

/// The default `LLM_REQUEST_TIMEOUT`: 5 minutes for local providers (slow
/// hardware), none for cloud ones (the run deadline still applies).
pub fn default_request_timeout(provider: &str) -> Option<Duration> {
    is_local_provider(provider).then_some(Duration::from_secs(300))
}

/// The default `LLM_MAX_RETRIES`: 2 for local providers, 5 for cloud ones.
pub fn default_max_retries(provider: &str) -> u32 {
    if is_local_provider(provider) { 2 } else { 5 }
}

/// Everything needed to talk to one model endpoint.
#[derive(Clone, PartialEq)]
pub struct ProviderConfig {
    /// `MODEL_PROVIDER`, lowercased: `anthropic` selects the Messages API,
    /// `bedrock` is refused, anything else is OpenAI-compatible.
    pub provider: String,
    /// `MODEL_NAME`; for Azure, the deployment name.
    pub model: String,
    /// `MODEL_BASE_URL` without trailing `/`; `None` for the provider's
    /// default ([`default_base_url`]).
    pub base_url: Option<String>,
    /// The API key (`API_KEY`, `OPENAI_API_KEY`, ...). Never logged: the
    /// `Debug` output redacts it.
    pub api_key: Option<String>,
    /// `MODEL_PROVIDER_HEADERS`: sent with every request, after (and so
    /// overriding) the auth header. Values are redacted in `Debug`.
    pub headers: Vec<(String, String)>,
    /// `AZURE_OPENAI_API_VERSION` (`azure-openai` only).
    pub azure_api_version: String,
    /// `LLM_REQUEST_TIMEOUT`: the limit for one attempt, from sending the
    /// request to the end of the answer. `None`: no limit.
    pub request_timeout: Option<Duration>,
    /// `LLM_MAX_RETRIES`: further attempts after a retryable failure.
    pub max_retries: u32,
    /// Waits between attempts.
    pub backoff: Backoff,
    /// Ask for a streamed (SSE) answer. On by default; a server that
    /// answers plain JSON anyway is understood either way.
    pub stream: bool,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self::new(DEFAULT_PROVIDER)
    }
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<_> = self
            .headers
            .iter()
            .map(|(k, _)| format!("{k}: <redacted>"))
            .collect();
        f.debug_struct("ProviderConfig")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("headers", &headers)
            .field("azure_api_version", &self.azure_api_version)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("stream", &self.stream)
            .finish()
    }
}

impl ProviderConfig {
    /// The defaults for `provider` (lowercased; empty means `openai`): model
    /// `gpt-4o-mini`, no base URL, key or headers, the provider's timeout
    /// and retry defaults, streaming on.
    pub fn new(provider: &str) -> Self {
        let provider = match provider.trim() {
            "" => DEFAULT_PROVIDER.to_owned(),
            p => p.to_ascii_lowercase(),
        };
        Self {
            model: DEFAULT_MODEL.to_owned(),
            base_url: None,
            api_key: None,
            headers: Vec::new(),
            azure_api_version: DEFAULT_AZURE_API_VERSION.to_owned(),
            request_timeout: default_request_timeout(&provider),
            max_retries: default_max_retries(&provider),
            backoff: Backoff::default(),
            stream: true,
            provider,
        }
    }

    /// Sets the model (empty keeps the default).
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        let model = model.into();
        if !model.trim().is_empty() {
            self.model = model.trim().to_owned();
        }
        self
    }

    /// Sets the base URL, trailing `/` trimmed (empty means the default).
    pub fn with_base_url(mut self, url: impl AsRef<str>) -> Self {
        let url = url.as_ref().trim().trim_end_matches('/');
        self.base_url = (!url.is_empty()).then(|| url.to_owned());
        self
    }

    /// Sets the API key (empty means none).
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.api_key = (!key.is_empty()).then_some(key);
        self
    }

    /// Sets the extra headers from a `MODEL_PROVIDER_HEADERS` value.
    pub fn with_headers_json(mut self, json: &str) -> Result<Self, ConfigError> {
        self.headers = parse_headers_json(json)?;
        Ok(self)
    }

    /// The base URL in effect: the configured one, else the provider's
    /// default, else OpenAI's (`None` only for `azure-openai` without one).
    pub fn effective_base_url(&self) -> Option<&str> {
        if let Some(u) = &self.base_url {
            return Some(u);
        }
        match self.provider.as_str() {
            "azure-openai" => None,
            p => Some(default_base_url(p).unwrap_or(OPENAI_BASE_URL)),
        }
    }

    /// Why this config would send prompts to a public endpoint nobody
    /// asked for: no base URL was set, so the provider's default (an
    /// `https://` cloud endpoint) would be used, yet no API key and no
    /// extra header was given for it. `None` when the endpoint was chosen
    /// (a base URL, a key or headers set) or is not a public one (local
    /// providers, `azure-openai` without a URL).
    pub fn unrequested_remote(&self) -> Option<String> {
        if self.base_url.is_some() || self.api_key.is_some() || !self.headers.is_empty() {
            return None;
        }
        let url = self.effective_base_url()?;
        url.starts_with("https://").then(|| {
            format!(
                "no MODEL_BASE_URL and no API key: the prompt would go to {url} (the default of \
                 provider {}) without credentials; set MODEL_BASE_URL to your model server, or \
                 the provider's key (API_KEY, OPENAI_API_KEY, ANTHROPIC_API_KEY, ...)",
                self.provider
            )
        })
    }

    /// A [`Transport`] to `url` carrying `auth` (a secret) and the extra
    /// headers, with this config's timeout and retries.
    pub(crate) fn transport(
        &self,
        url: Url,
        auth: Option<(HeaderName, String)>,
        fixed: &[(HeaderName, &'static str)],
    ) -> Result<Transport, ConfigError> {
        let mut headers = HeaderMap::new();
        for (name, value) in fixed {
            headers.insert(name.clone(), HeaderValue::from_static(value));
        }
        if let Some((name, secret)) = auth {
            let mut value = HeaderValue::from_str(&secret).map_err(|_| ConfigError::ApiKey)?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        for (name, value) in &self.headers {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ConfigError::Headers(format!("{name:?} is not a valid HTTP header name"))
            })?;
            let mut v = HeaderValue::from_str(value).map_err(|_| {
                ConfigError::Headers(format!(
                    "the value of {name:?} is not a valid HTTP header value"
                ))
            })?;
            // Extra headers often carry credentials of a gateway.
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        Ok(Transport {
            client: http_client().map_err(ConfigError::Client)?,
            url,
            headers,
            timeout: self.request_timeout,
            max_retries: self.max_retries,
            backoff: self.backoff,
        })
    }
}

/// Parses `MODEL_PROVIDER_HEADERS`: a JSON object of string values. Blank
/// text means no headers.
pub fn parse_headers_json(json: &str) -> Result<Vec<(String, String)>, ConfigError> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        ConfigError::Headers(format!(
            "not valid JSON ({e}); expected an object like {{\"X-Header\":\"value\"}}"
        ))
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(ConfigError::Headers(
            "expected a JSON object like {\"X-Header\":\"value\"}".into(),
        ));
    };
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            _ => Err(ConfigError::Headers(format!(
                "the value of {k:?} must be a string"
            ))),
        })
        .collect()
}

/// Why a [`ProviderConfig`] cannot make a provider. Each message names the
/// environment variable to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `MODEL_PROVIDER_HEADERS` is malformed.
    #[error("MODEL_PROVIDER_HEADERS: {0}")]
    Headers(String),
    /// `MODEL_BASE_URL` is missing where required, or not a URL.
    #[error("MODEL_BASE_URL: {0}")]
    BaseUrl(String),
    /// The API key cannot be sent as a header (the key itself is not shown).
    #[error("the API key contains characters that cannot be sent in an HTTP header")]
    ApiKey,
    /// A provider this build does not implement.
    #[error(
        "MODEL_PROVIDER: {0:?} is not supported yet (use anthropic, openai, azure-openai or an OpenAI-compatible provider)"
    )]
    Unsupported(String),
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// Neither an endpoint nor a key was set, and the default endpoint is
    /// a public one (see [`ProviderConfig::unrequested_remote`]).
    #[error("{0}")]
    Unrequested(String),
}

impl ConfigError {
    /// The environment variable at fault, when there is one.
    pub fn variable(&self) -> Option<&'static str> {
        match self {
            Self::Headers(_) => Some("MODEL_PROVIDER_HEADERS"),
            Self::BaseUrl(_) | Self::Unrequested(_) => Some("MODEL_BASE_URL"),
            Self::Unsupported(_) => Some("MODEL_PROVIDER"),
            Self::ApiKey | Self::Client(_) => None,
        }
    }
}

/// Builds the provider `config` describes: `anthropic` speaks the Messages
/// API, `bedrock` is refused (not implemented yet), every other name speaks
/// OpenAI Chat Completions. A config that would reach a public endpoint
/// without a key or a URL anyone set is refused: nothing leaves the
/// machine unasked.
pub fn build(config: &ProviderConfig) -> Result<Arc<dyn Provider>, ConfigError> {
    if config.provider == "bedrock" {
        return Err(ConfigError::Unsupported(config.provider.clone()));
    }
    if let Some(why) = config.unrequested_remote() {
        return Err(ConfigError::Unrequested(why));
    }
    match config.provider.as_str() {
        "anthropic" => Ok(Arc::new(AnthropicProvider::new(config)?)),
        "bedrock" => Err(ConfigError::Unsupported(config.provider.clone())),
        _ => Ok(Arc::new(OpenAiProvider::new(config)?)),
    }
}

/// `base` with `segments` appended as path segments (percent-encoded).
pub(crate) fn endpoint(base: &str, segments: &[&str]) -> Result<Url, ConfigError> {
    let mut url = Url::parse(base)
        .map_err(|e| ConfigError::BaseUrl(format!("{base:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::BaseUrl(format!(
            "{base:?} must start with http:// or https://"
        )));
    }
    url.path_segments_mut()
        .map_err(|()| ConfigError::BaseUrl(format!("{base:?} cannot take a path")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// The `Authorization: Bearer` header for OpenAI-style keys.
pub(crate) fn bearer(key: &str) -> (HeaderName, String) {
    (AUTHORIZATION, format!("Bearer {key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_provider() {
        let c = ProviderConfig::default();
        assert_eq!(c.provider, "openai");
        assert_eq!(c.model, "gpt-4o-mini");
        assert_eq!(c.request_timeout, None);
        assert_eq!(c.max_retries, 5);
        assert!(c.stream);
        assert_eq!(c.azure_api_version, "2024-06-01");
        assert_eq!(c.effective_base_url(), Some("https://api.openai.com/v1"));

        let c = ProviderConfig::new(" Ollama ");
        assert_eq!(c.provider, "ollama");
        assert_eq!(c.request_timeout, Some(Duration::from_secs(300)));
        assert_eq!(c.max_retries, 2);
        assert_eq!(
            c.effective_base_url(),
            Some("http://ollama.default.svc:11434/v1")
        );
        assert_eq!(ProviderConfig::new("").provider, "openai");
    }

    #[test]
    fn local_providers_are_matched_in_any_case() {
        for p in [
            "ollama",
            "LM-Studio",
            "llama-server",
            "unsloth",
            "VLLM",
            "llamacpp",
            "local",
        ] {
            assert!(is_local_provider(p), "{p}");
        }
        for p in ["openai", "anthropic", "azure-openai", "bedrock", "ollama2"] {
            assert!(!is_local_provider(p), "{p}");
        }
    }

    #[test]
    fn default_base_urls() {
        assert_eq!(
            default_base_url("lm-studio"),
            Some("http://localhost:1234/v1")
        );
        assert_eq!(
            default_base_url("llama-server"),
            Some("http://localhost:8080/v1")
        );
        assert_eq!(
            default_base_url("unsloth"),
            Some("http://localhost:8080/v1")
        );
        assert_eq!(default_base_url("vllm"), None);
        assert_eq!(
            ProviderConfig::new("vllm").effective_base_url(),
            Some(OPENAI_BASE_URL)
        );
        assert_eq!(
            ProviderConfig::new("azure-openai").effective_base_url(),
            None
        );
        assert_eq!(
            ProviderConfig::new("anthropic").effective_base_url(),
            Some(ANTHROPIC_BASE_URL)
        );
    }

    #[test]
    fn base_url_is_trimmed() {
        let c = ProviderConfig::new("openai").with_base_url("http://h:1/v1//");
        assert_eq!(c.base_url.as_deref(), Some("http://h:1/v1"));
        assert_eq!(
            ProviderConfig::new("openai").with_base_url(" ").base_url,
            None
        );
    }

    #[test]
    fn headers_json_is_parsed_and_errors_name_the_variable() {
        assert_eq!(
            parse_headers_json(r#"{"X-A":"1","x-b":"two"}"#).expect("valid"),
            vec![
                ("X-A".to_owned(), "1".to_owned()),
                ("x-b".to_owned(), "two".to_owned())
            ]
        );
        assert_eq!(parse_headers_json("  ").expect("blank"), vec![]);
        for bad in ["{", "[1]", r#"{"a":1}"#] {
            let e = parse_headers_json(bad).expect_err(bad);
            assert!(e.to_string().starts_with("MODEL_PROVIDER_HEADERS: "), "{e}");
            assert_eq!(e.variable(), Some("MODEL_PROVIDER_HEADERS"));
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = ProviderConfig::new("openai")
            .with_api_key("sk-secret-123")
            .with_headers_json(r#"{"X-Gateway-Key":"gw-secret"}"#)
            .expect("valid");
        let s = format!("{c:?}");
        assert!(!s.contains("sk-secret") && !s.contains("gw-secret"), "{s}");
        assert!(s.contains("X-Gateway-Key"), "{s}");
    }

    #[test]
    fn factory_refuses_what_it_cannot_build() {
        let e = build(&ProviderConfig::new("bedrock"))
            .err()
            .expect("refused");
        assert!(e.to_string().contains("not supported yet"), "{e}");
        assert_eq!(e.variable(), Some("MODEL_PROVIDER"));

        let e = build(&ProviderConfig::new("azure-openai"))
            .err()
            .expect("refused");
        assert!(e.to_string().starts_with("MODEL_BASE_URL: "), "{e}");

        let e = build(&ProviderConfig::new("openai").with_base_url("not a url"))
            .err()
            .expect("refused");
        assert_eq!(e.variable(), Some("MODEL_BASE_URL"));

        let c = ProviderConfig {
            headers: vec![("bad header".into(), "v".into())],
            ..ProviderConfig::default()
        };
        let e = build(&c).err().expect("refused");
        assert_eq!(e.variable(), Some("MODEL_PROVIDER_HEADERS"));

        let e = build(&ProviderConfig::default().with_api_key("sk-\nsecret"))
            .err()
            .expect("refused");
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn factory_dispatches_by_name() {
        let p = build(
            &ProviderConfig::new("anthropic")
                .with_model("claude-x")
                .with_api_key("k"),
        )
        .expect("ok");
        assert_eq!((p.system(), p.model()), ("anthropic", "claude-x"));
        let p = build(&ProviderConfig::new("ollama")).expect("ok");
        assert_eq!(p.system(), "ollama");
        let p =
            build(&ProviderConfig::new("azure-openai").with_base_url("https://r.openai.azure.com"))
                .expect("ok");
        assert_eq!(p.system(), "az.ai.openai");
    }

    #[test]
    fn a_public_default_endpoint_needs_a_key_or_a_url() {
        for provider in ["openai", "anthropic", "", "some-compatible-name"] {
            let e = build(&ProviderConfig::new(provider))
                .err()
                .expect("refused");
            assert!(e.to_string().contains("without credentials"), "{e}");
            assert_eq!(e.variable(), Some("MODEL_BASE_URL"));
        }
        let ok = [
            ProviderConfig::new("openai").with_api_key("sk-x"),
            ProviderConfig::new("openai").with_base_url("http://127.0.0.1:9/v1"),
            ProviderConfig::new("lm-studio"),
            ProviderConfig::new("ollama"),
            ProviderConfig {
                headers: vec![("X-Gateway-Key".into(), "k".into())],
                ..ProviderConfig::default()
            },
        ];
        for c in ok {
            assert!(c.unrequested_remote().is_none(), "{c:?}");
        }
    }

    #[test]
    fn endpoints_append_encoded_segments() {
        let u = endpoint("http://h:1/v1", &["chat", "completions"]).expect("ok");
        assert_eq!(u.as_str(), "http://h:1/v1/chat/completions");
        let u = endpoint("http://h:1", &["deployments", "my model"]).expect("ok");
        assert_eq!(u.as_str(), "http://h:1/deployments/my%20model");
        assert!(endpoint("ftp://h", &[]).is_err());
    }
}
