//! Talking to the hub: requests with the token, errors as the hub words them, listings.

use super::*;

/// Maestro's error body; only what a person is shown is read.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub(super) reason: String,
    #[serde(default)]
    pub(super) details: Vec<Detail>,
    #[serde(default)]
    pub(super) operation_id: Option<String>,
    #[serde(default)]
    pub(super) current_version: Option<i64>,
}

impl ErrorBody {
    /// The hub's reason, less the one field problem it repeats, which gets its own line.
    pub(super) fn headline(&self) -> &str {
        let [only] = self.details.as_slice() else {
            return &self.reason;
        };
        let repeated = format!(": {}: {}", only.field, only.message);
        self.reason.strip_suffix(&repeated).unwrap_or(&self.reason)
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct Detail {
    #[serde(default)]
    pub(super) field: String,
    #[serde(default)]
    pub(super) message: String,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum RequestError {
    #[error("cannot reach the hub at {server}: {cause}")]
    Unreachable { server: String, cause: String },
    #[error("the hub at {server} did not answer within {limit}")]
    TimedOut { server: String, limit: String },
    #[error("{}", .body.headline())]
    Refused { status: StatusCode, body: ErrorBody, sent_token: bool },
    #[error("the hub at {server} answered {status}: {text}")]
    Unexpected { server: String, status: StatusCode, text: String },
    #[error("talking to the hub at {server}: {cause}")]
    Transport { server: String, cause: String },
}

impl RequestError {
    pub(super) fn status(&self) -> Option<StatusCode> {
        match self {
            RequestError::Refused { status, .. } | RequestError::Unexpected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A 409 because someone else wrote since `read`, as opposed to one because the object is
    /// being deleted: only the first is worth re-reading for.
    pub(super) fn is_stale_version(&self, read: i64) -> bool {
        matches!(self, RequestError::Refused { status: StatusCode::CONFLICT, body, .. }
            if body.current_version.is_some_and(|current| current != read))
    }

    /// Lines under the `error:` line: the hub's per-field details, its operation id, and what
    /// to try next.
    pub(super) fn notes(&self) -> Vec<String> {
        match self {
            RequestError::Unreachable { .. } => vec![
                "hint: is a hub running there? Start one with `maestro server`, or point at another with --server URL \
                 (or MAESTRO_SERVER)"
                    .to_string(),
            ],
            RequestError::TimedOut { .. } => {
                vec!["hint: the hub may be overloaded or stuck; try again, or allow longer with --timeout".to_string()]
            }
            RequestError::Refused { status, body, sent_token } => {
                let mut lines: Vec<String> =
                    body.details.iter().map(|d| format!("  {}: {}", d.field, d.message)).collect();
                if let Some(id) = body.operation_id.as_deref().filter(|id| !id.is_empty()) {
                    lines.push(format!("  operation id: {id}"));
                }
                if *status == StatusCode::UNAUTHORIZED {
                    lines.push(if *sent_token {
                        "hint: the hub refused the token; check --token, MAESTRO_TOKEN or --token-file".to_string()
                    } else {
                        "hint: this hub needs a token: pass --token-file FILE, set MAESTRO_TOKEN, or use --token"
                            .to_string()
                    });
                }
                lines
            }
            RequestError::Unexpected { .. } => {
                vec!["hint: is --server the address of a Maestro hub, and not of something in front of it?".to_string()]
            }
            RequestError::Transport { .. } => Vec::new(),
        }
    }
}

/// One hub, reached over HTTP with a bound on every request.
pub(super) struct Hub {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    /// The address as messages show it: without any user or password.
    pub(super) shown: String,
    pub(super) token: Option<Secret>,
    pub(super) timeout: Duration,
}

/// What a request carries.
pub(super) enum Payload<'a> {
    Json(&'a Value),
    /// Raw bytes and their media type (an operator package archive).
    Bytes(Vec<u8>, &'static str),
}

impl Hub {
    pub(super) fn connect(args: &HubArgs) -> anyhow::Result<Hub> {
        let base = args.server.trim_end_matches('/').to_string();
        let mut url = reqwest::Url::parse(&base).map_err(|err| {
            anyhow!("--server {base:?} is not a URL ({err}); expected one like http://127.0.0.1:8000")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("--server {base:?} must start with http:// or https://");
        }
        let _ = url.set_password(None);
        let _ = url.set_username("");
        let token = match &args.token_file {
            Some(path) => Some(read_token(path)?),
            None => args.token.clone().filter(|token| !token.0.is_empty()),
        };
        let http = reqwest::Client::builder()
            .timeout(args.timeout)
            .connect_timeout(args.timeout)
            .user_agent(concat!("maestro-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("setting up the HTTP client")?;
        Ok(Hub { http, base, shown: url.as_str().trim_end_matches('/').to_string(), token, timeout: args.timeout })
    }

    pub(super) async fn get(&self, path: &str) -> Result<Value, RequestError> {
        Ok(self.call(Method::GET, path, &[], None).await?.unwrap_or(Value::Null))
    }

    pub(super) async fn send(&self, method: Method, path: &str, body: &Value) -> Result<Value, RequestError> {
        Ok(self.call(method, path, &[], Some(Payload::Json(body))).await?.unwrap_or(Value::Null))
    }

    pub(super) async fn delete(&self, path: &str) -> Result<(), RequestError> {
        self.call(Method::DELETE, path, &[], None).await.map(|_| ())
    }

    /// One request; `None` for an empty success (a 204).
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Payload<'_>>,
    ) -> Result<Option<Value>, RequestError> {
        let mut request = self.http.request(method, format!("{}{API}{path}", self.base));
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(&token.0);
        }
        match body {
            Some(Payload::Json(value)) => request = request.json(value),
            Some(Payload::Bytes(bytes, media)) => {
                request = request.header(reqwest::header::CONTENT_TYPE, media).body(bytes);
            }
            None => {}
        }
        let response = request.send().await.map_err(|err| self.failed(&err))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|err| self.failed(&err))?;
        if !status.is_success() {
            return Err(self.refused(status, &bytes));
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&bytes).map(Some).map_err(|err| RequestError::Unexpected {
            server: self.shown.clone(),
            status,
            text: format!("a body that is not JSON ({err})"),
        })
    }

    pub(super) fn failed(&self, err: &reqwest::Error) -> RequestError {
        let server = self.shown.clone();
        if err.is_timeout() {
            return RequestError::TimedOut { server, limit: humantime::format_duration(self.timeout).to_string() };
        }
        let cause = root_cause(err);
        if err.is_connect() {
            RequestError::Unreachable { server, cause }
        } else {
            RequestError::Transport { server, cause }
        }
    }

    pub(super) fn refused(&self, status: StatusCode, bytes: &[u8]) -> RequestError {
        match serde_json::from_slice::<ErrorBody>(bytes) {
            Ok(body) if !body.reason.is_empty() => {
                RequestError::Refused { status, body, sent_token: self.token.is_some() }
            }
            _ => {
                let text: String = String::from_utf8_lossy(bytes).chars().take(200).collect();
                let text = if text.trim().is_empty() { "an empty body".to_string() } else { text.trim().to_string() };
                RequestError::Unexpected { server: self.shown.clone(), status, text }
            }
        }
    }

    /// Every item of a list, following pages when asked to.
    pub(super) async fn list(&self, path: &str, args: &ListArgs) -> Result<Listing, RequestError> {
        let mut page = args.page.unwrap_or(1);
        let mut listing = Listing::default();
        let mut first_len = None;
        loop {
            let mut query = vec![("page", page.to_string())];
            query.extend(args.size.map(|size| ("size", size.to_string())));
            query.extend(args.search.clone().map(|search| ("search", search)));
            query.extend(args.order_by.clone().map(|order| ("orderBy", order)));
            let body = self.call(Method::GET, path, &query, None).await?.unwrap_or(Value::Null);
            let items = match body.get("items") {
                Some(Value::Array(items)) => items.clone(),
                _ => Vec::new(),
            };
            listing.total = body.get("total").and_then(Value::as_i64).unwrap_or(0);
            let got = items.len();
            listing.items.extend(items);
            let first = *first_len.get_or_insert(got);
            let done = got == 0 || got < first || listing.items.len() as i64 >= listing.total;
            if !args.all || done {
                return Ok(listing);
            }
            page += 1;
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Listing {
    pub(super) items: Vec<Value>,
    pub(super) total: i64,
}

/// The innermost cause is the one a person can act on ("Connection refused"); the outer ones
/// only repeat the URL.
pub(super) fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

pub(super) fn read_token(path: &PathBuf) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading --token-file {}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("--token-file {} is empty", path.display());
    }
    Ok(Secret(token.to_string()))
}

/// Percent-encodes a path segment, so a name can never reach another endpoint.
pub(super) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A string literal of the search language, where a quote is written twice.
pub(super) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
