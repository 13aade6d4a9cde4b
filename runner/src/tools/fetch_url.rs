//! `fetch_url`: an HTTP GET whose body comes back as text, HTML converted
//! to plain text, behind the SSRF guard of [`super::ssrf`].

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agentpod_sdk::llm::ToolSpec;
use agentpod_sdk::tool::{Args, Tool, ToolContext};
use async_trait::async_trait;
use reqwest::Url;
use reqwest::dns::Resolve;
use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use serde_json::{Value, json};
use thiserror::Error;

use super::ssrf::{Blocked, Guard, GuardedResolver, SystemResolver, find_blocked, find_in_chain};
use super::{int_arg, str_arg};

/// The `User-Agent` upstream sends.
pub const USER_AGENT_VALUE: &str = "Sympozium/1.0 (agent-runner)";
/// The `Accept` header upstream sends.
pub const ACCEPT_VALUE: &str = "text/html,application/xhtml+xml,application/json,text/plain,*/*";
/// Whole-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The most redirects followed.
pub const MAX_REDIRECTS: usize = 5;
/// The most body bytes read.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Body bytes shown with an HTTP error status.
pub const ERROR_BODY_BYTES: usize = 2000;
/// `maxChars` when the model gives none.
pub const DEFAULT_MAX_CHARS: usize = 50_000;
/// The largest `maxChars` honoured.
pub const MAX_MAX_CHARS: usize = 100_000;

/// `fetch_url` settings.
#[derive(Clone)]
pub struct FetchConfig {
    /// Turns the SSRF guard off (`SYMPOZIUM_FETCH_URL_ALLOW_PRIVATE=true`).
    pub allow_private: bool,
    /// The DNS resolver behind the guard; the system resolver when `None`.
    /// Tests inject one that maps made-up names to chosen addresses.
    pub resolver: Option<Arc<dyn Resolve>>,
    /// Socket addresses treated as public even though they are not (port 0
    /// matches any port). For tests only: a local server standing in for a
    /// public site.
    pub public_exceptions: Vec<SocketAddr>,
    /// Whole-request timeout, [`DEFAULT_TIMEOUT`] by default.
    pub timeout: Duration,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            resolver: None,
            public_exceptions: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl fmt::Debug for FetchConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchConfig")
            .field("allow_private", &self.allow_private)
            .field("resolver", &self.resolver.as_ref().map(|_| "custom"))
            .field("public_exceptions", &self.public_exceptions)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why the `fetch_url` tool could not be built.
#[derive(Debug, Error)]
pub enum FetchUrlError {
    /// The HTTP client could not be built.
    #[error("cannot build the fetch_url HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The `fetch_url` tool.
#[derive(Debug)]
pub struct FetchUrl {
    client: reqwest::Client,
    guard: Guard,
    timeout: Duration,
    spec: ToolSpec,
}

/// A redirect refused because there were too many.
#[derive(Debug)]
struct TooManyRedirects;

impl fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stopped after {MAX_REDIRECTS} redirects")
    }
}

impl std::error::Error for TooManyRedirects {}

/// A redirect to a literal non-public address.
#[derive(Debug)]
struct RedirectRefused {
    target: Url,
    blocked: Blocked,
}

impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redirect to {} refused: {}", self.target, self.blocked)
    }
}

impl std::error::Error for RedirectRefused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.blocked)
    }
}

/// A redirect to something other than http or https.
#[derive(Debug)]
struct BadRedirectScheme(String);

impl fmt::Display for BadRedirectScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redirect to unsupported scheme {:?}", self.0)
    }
}

impl std::error::Error for BadRedirectScheme {}

impl FetchUrl {
    /// Builds the tool and its HTTP client.
    pub fn new(cfg: FetchConfig) -> Result<Self, FetchUrlError> {
        // reqwest is built without a bundled crypto provider; https needs one.
        // Installing fails harmlessly when another part already installed it.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let guard = if cfg.allow_private {
            Guard::allow_all()
        } else {
            Guard::strict().with_exceptions(cfg.public_exceptions.clone())
        };
        let inner: Arc<dyn Resolve> = cfg
            .resolver
            .clone()
            .unwrap_or_else(|| Arc::new(SystemResolver));
        let redirect_guard = guard.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(TooManyRedirects);
            }
            let scheme = attempt.url().scheme().to_owned();
            if scheme != "http" && scheme != "https" {
                return attempt.error(BadRedirectScheme(scheme));
            }
            // Literal IPs skip the resolver: check them here, before the
            // client dials anything.
            match redirect_guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(blocked) => {
                    let target = attempt.url().clone();
                    attempt.error(RedirectRefused { target, blocked })
                }
            }
        });
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .redirect(policy)
            .dns_resolver(Arc::new(GuardedResolver::new(inner, guard.clone())))
            // A proxy would resolve and dial for us, out of the guard's reach.
            .no_proxy()
            .build()
            .map_err(FetchUrlError::Client)?;
        let spec = ToolSpec {
            name: "fetch_url".into(),
            description:
                "Fetch a web page or API response over HTTP(S) with a GET request. HTML is \
                          converted to plain text. Only public addresses can be reached."
                    .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "url": {"type": "string", "description": "The http or https URL to fetch"},
                    "maxChars": {"type": "integer", "description": "Maximum characters to return (default 50000, max 100000)"},
                    "headers": {
                        "type": "object",
                        "description": "Extra request headers",
                        "additionalProperties": {"type": "string"}
                    }
                },
                "required": ["url"]
            }),
        };
        Ok(Self {
            client,
            guard,
            timeout: cfg.timeout,
            spec,
        })
    }

    async fn fetch(&self, args: &Args) -> Result<String, String> {
        let raw = str_arg(args, "url").map(str::trim).unwrap_or_default();
        if raw.is_empty() {
            return Err("url is required".into());
        }
        let url = Url::parse(raw).map_err(|e| format!("invalid url {raw:?}: {e}"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(format!("url must use http or https, not {}", url.scheme()));
        }
        let max_chars = match int_arg(args, "maxChars")? {
            Some(n) if n > 0 => (n as usize).min(MAX_MAX_CHARS),
            _ => DEFAULT_MAX_CHARS,
        };
        let headers = request_headers(args.get("headers"))?;
        if let Err(blocked) = self.guard.check_url(&url) {
            tracing::warn!(url = %url, ip = %blocked.ip, "fetch_url: refused non-public address");
            return Err(format!("fetch_url refused {url}: {blocked}"));
        }

        let mut resp = match self.client.get(url.clone()).headers(headers).send().await {
            Ok(r) => r,
            Err(e) => return Err(self.describe(&url, &e)),
        };
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mut body: Vec<u8> = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_BODY_BYTES - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= MAX_BODY_BYTES {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(self.describe(&url, &e)),
            }
        }
        tracing::debug!(url = %url, status = status.as_u16(), bytes = body.len(), "fetched url");

        if status.as_u16() >= 400 {
            let cut = &body[..floor_boundary(&body, ERROR_BODY_BYTES)];
            return Ok(format!(
                "HTTP {} {}\n{}",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                String::from_utf8_lossy(cut)
            ));
        }
        let text = String::from_utf8_lossy(&body);
        let is_html = content_type.contains("html")
            || (!content_type.starts_with("text/") && text.trim_start().starts_with('<'));
        let text = if is_html {
            html_to_text(&text)
        } else {
            text.into_owned()
        };
        if text.is_empty() {
            return Ok("(empty response body)".into());
        }
        Ok(truncate_chars(text, max_chars))
    }

    /// The message for a request that failed.
    fn describe(&self, url: &Url, e: &reqwest::Error) -> String {
        if let Some(r) = find_in_chain::<RedirectRefused>(e) {
            return format!(
                "fetch_url refused redirect from {url} to {}: {}",
                r.target, r.blocked
            );
        }
        // Refused by the resolver. reqwest does not say which hop failed,
        // but a host other than the first URL's can only come from a redirect.
        if let Some(blocked) = find_blocked(e) {
            if url.host_str() != Some(blocked.host.as_str()) {
                return format!("fetch_url refused a redirect from {url}: {blocked}");
            }
            return format!("fetch_url refused {url}: {blocked}");
        }
        if e.is_timeout() {
            return format!("fetching {url} timed out after {}s", self.timeout.as_secs());
        }
        format!("fetching {url} failed: {}", error_chain(e))
    }
}

#[async_trait]
impl Tool for FetchUrl {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Args, _ctx: &ToolContext) -> String {
        self.fetch(&args)
            .await
            .unwrap_or_else(|e| format!("Error: {e}"))
    }
}

/// Upstream's default headers, then the model's (which win).
fn request_headers(custom: Option<&Value>) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    map.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    map.insert(ACCEPT, HeaderValue::from_static(ACCEPT_VALUE));
    match custom {
        None | Some(Value::Null) => {}
        Some(Value::Object(obj)) => {
            for (k, v) in obj {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(_) | Value::Bool(_) => v.to_string(),
                    _ => return Err(format!("header {k:?} must have a string value")),
                };
                let name = HeaderName::from_bytes(k.as_bytes())
                    .map_err(|_| format!("invalid header name {k:?}"))?;
                let value = HeaderValue::from_str(&value)
                    .map_err(|_| format!("invalid value for header {k:?}"))?;
                map.insert(name, value);
            }
        }
        Some(_) => return Err("headers must be an object of strings".into()),
    }
    Ok(map)
}

/// An error's sources, joined with `: `. reqwest's own message (`error
/// sending request for url (...)`) is left out when it has a source: the
/// caller already names the URL, and the sources say what went wrong.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = match e.source() {
        Some(s) => Some(s),
        None => return e.to_string(),
    };
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// The largest index `<= max` that does not split a UTF-8 sequence.
fn floor_boundary(bytes: &[u8], max: usize) -> usize {
    if bytes.len() <= max {
        return bytes.len();
    }
    let mut i = max;
    while i > 0 && max - i < 3 && bytes[i] & 0xC0 == 0x80 {
        i -= 1;
    }
    i
}

/// Cuts `text` to `max` characters, with upstream's suffix.
pub fn truncate_chars(text: String, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text;
    }
    let end = text.char_indices().nth(max).map_or(text.len(), |(i, _)| i);
    format!(
        "{}\n\n... (truncated at {max} chars, total ~{total})",
        &text[..end]
    )
}

/// Elements whose content is not text a reader would see.
const SKIPPED: [&str; 5] = ["script", "style", "head", "noscript", "svg"];

/// Elements that start or end a line (`br` always adds one).
const BLOCKS: [&str; 36] = [
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "caption",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "title",
    "tr",
    "ul",
];

/// Converts HTML to readable text: tags dropped, the content of script,
/// style, head, noscript and svg skipped, block elements on their own
/// lines, entities decoded, whitespace collapsed.
pub fn html_to_text(html: &str) -> String {
    // ASCII lowercasing keeps byte offsets, so `lower` indexes like `html`.
    let lower = html.to_ascii_lowercase();
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len() / 2);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'<' {
            let next = html[i..].find('<').map_or(html.len(), |k| i + k);
            push_text(&mut out, &decode_entities(&html[i..next]));
            i = next;
            continue;
        }
        if lower[i..].starts_with("<!--") {
            i = lower[i + 4..]
                .find("-->")
                .map_or(html.len(), |k| i + 4 + k + 3);
            continue;
        }
        if matches!(bytes.get(i + 1), Some(b'!' | b'?')) {
            i = html[i..].find('>').map_or(html.len(), |k| i + k + 1);
            continue;
        }
        let Some(tag) = parse_tag(&lower, i) else {
            push_text(&mut out, "<");
            i += 1;
            continue;
        };
        i = tag.end;
        if !tag.closing && !tag.self_closing && SKIPPED.contains(&tag.name) {
            let close = format!("</{}", tag.name);
            i = match lower[i..].find(&close) {
                Some(k) => lower[i + k..]
                    .find('>')
                    .map_or(html.len(), |m| i + k + m + 1),
                None => html.len(),
            };
            continue;
        }
        if tag.name == "br" || (BLOCKS.contains(&tag.name) && !out.ends_with('\n')) {
            out.push('\n');
        } else if matches!(tag.name, "td" | "th") {
            push_text(&mut out, " ");
        }
    }
    tidy(&out)
}

struct Tag<'a> {
    name: &'a str,
    closing: bool,
    self_closing: bool,
    /// Byte index just past the closing `>`.
    end: usize,
}

/// Parses the tag starting at `lower[at] == '<'`, or `None` when the `<`
/// does not start a tag (as in `a < b`).
fn parse_tag(lower: &str, at: usize) -> Option<Tag<'_>> {
    let b = lower.as_bytes();
    let mut j = at + 1;
    let closing = b.get(j) == Some(&b'/');
    if closing {
        j += 1;
    }
    let start = j;
    if !b.get(j)?.is_ascii_alphabetic() {
        return None;
    }
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'-' || b[j] == b':') {
        j += 1;
    }
    let name = &lower[start..j];
    let mut quote: Option<u8> = None;
    while j < b.len() {
        match (quote, b[j]) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, c @ (b'"' | b'\'')) => quote = Some(c),
            (None, b'>') => {
                let self_closing = j > start && b[j - 1] == b'/';
                return Some(Tag {
                    name,
                    closing,
                    self_closing,
                    end: j + 1,
                });
            }
            (None, _) => {}
        }
        j += 1;
    }
    Some(Tag {
        name,
        closing,
        self_closing: false,
        end: b.len(),
    })
}

/// Appends text, collapsing whitespace runs to one space.
fn push_text(out: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_whitespace() {
            if !matches!(out.chars().last(), None | Some(' ' | '\n')) {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

/// Trims every line and keeps at most one empty line in a row.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.split('\n').map(str::trim) {
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 1 { "\n\n" } else { "\n" });
        }
        out.push_str(line);
        blank = 0;
    }
    out
}

fn decode_entities(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('&') {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest
            .find(';')
            .filter(|&semi| semi <= 10)
            .and_then(|semi| entity(&rest[1..semi]).map(|c| (c, semi)));
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out.into()
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "mdash" => '\u{2014}',
        "ndash" => '\u{2013}',
        "hellip" => '\u{2026}',
        "lsquo" => '\u{2018}',
        "rsquo" => '\u{2019}',
        "ldquo" => '\u{201C}',
        "rdquo" => '\u{201D}',
        "copy" => '\u{00A9}',
        "reg" => '\u{00AE}',
        "trade" => '\u{2122}',
        "euro" => '\u{20AC}',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_text() {
        let html = r#"<!DOCTYPE html><html><head><title>T</title><style>p{color:red}</style></head>
<body><!-- hidden --><h1>Hello&nbsp;&amp; welcome</h1>
<p>First   paragraph
with <b>bold</b> text.</p><script>var x = "<p>no</p>";</script>
<noscript>enable js</noscript><svg><text>art</text></svg>
<ul><li>one</li><li>two &lt;3 &#x41;&#66;</li></ul><div data-x="a>b">after</div>a < b</body></html>"#;
        assert_eq!(
            html_to_text(html),
            "Hello & welcome\nFirst paragraph with bold text.\none\ntwo <3 AB\nafter\na < b"
        );
    }

    #[test]
    fn blank_lines_collapse() {
        assert_eq!(html_to_text("<p>a</p><p></p><br><br><p>b</p>"), "a\n\nb");
        assert_eq!(
            html_to_text("<table><tr><td>a</td><td>b</td></tr></table>"),
            "a b"
        );
    }

    #[test]
    fn truncation_suffix() {
        assert_eq!(truncate_chars("héllo".into(), 10), "héllo");
        assert_eq!(
            truncate_chars("héllo".into(), 2),
            "hé\n\n... (truncated at 2 chars, total ~5)"
        );
    }

    #[test]
    fn headers_merge_and_override() {
        let h =
            request_headers(Some(&json!({"Accept": "application/json", "X-Token": "t"}))).unwrap();
        assert_eq!(h[ACCEPT], "application/json");
        assert_eq!(h["x-token"], "t");
        assert_eq!(h[USER_AGENT], USER_AGENT_VALUE);
        assert_eq!(
            request_headers(Some(&json!({"bad name": "x"}))).unwrap_err(),
            "invalid header name \"bad name\""
        );
        assert_eq!(
            request_headers(Some(&json!("x"))).unwrap_err(),
            "headers must be an object of strings"
        );
    }
}
