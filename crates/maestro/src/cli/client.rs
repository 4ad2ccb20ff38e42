//! `maestro consumer|resource|bundle`: the hub's REST API for people at a terminal.
//!
//! The commands speak the same JSON as any other client of `/api/maestro/v1`, so what a person
//! does here a script can repeat with curl. What they add is what a terminal needs: files of
//! YAML manifests instead of request bodies, `apply` that creates or updates, tables, and
//! errors that say what to do next. Failures end the process with status 1 after one
//! `error: ...` report, rather than a debug dump of an error chain.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::output::{self, Columns, Format};

const API: &str = "/api/maestro/v1";

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

/// How to reach the hub and how to show what it says; shared by every client command.
#[derive(Debug, Args)]
#[command(next_help_heading = "Hub and output")]
struct HubArgs {
    /// Address of the hub.
    #[arg(long, env = "MAESTRO_SERVER", default_value = "http://127.0.0.1:8000", global = true)]
    server: String,
    /// Bearer token for a hub with authentication on. A flag shows in the process list, so
    /// prefer MAESTRO_TOKEN or --token-file.
    #[arg(long, env = "MAESTRO_TOKEN", hide_env_values = true, global = true)]
    token: Option<Secret>,
    /// File holding the bearer token; takes precedence over --token and MAESTRO_TOKEN.
    #[arg(long, value_name = "FILE", global = true)]
    token_file: Option<PathBuf>,
    /// How to print results: a table for people, or the API objects as JSON or YAML.
    #[arg(short, long, value_enum, default_value = "table", global = true)]
    output: Format,
    /// Longest wait for any one request to the hub.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    timeout: Duration,
}

/// A token that never shows in `Debug` output, so a logged command line cannot leak it.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Filter in the hub's search language, e.g. "consumer_name = 'c1' and version > 1" or
    /// "labels.env = 'prod'".
    #[arg(long)]
    search: Option<String>,
    /// Sort order, e.g. "name" or "created_at desc".
    #[arg(long)]
    order_by: Option<String>,
    /// Page to show, from 1.
    #[arg(long)]
    page: Option<i64>,
    /// Items per page (the hub's default when absent).
    #[arg(long)]
    size: Option<i64>,
    /// Follow every page from --page (or the first) to the end.
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Args)]
struct FileArgs {
    /// YAML or JSON, one or more documents separated by `---`; `-` reads standard input.
    #[arg(short = 'f', long = "file", visible_alias = "filename", value_name = "FILE")]
    file: String,
    /// Consumer for documents that name none, such as bare Kubernetes manifests.
    #[arg(long)]
    consumer: Option<String>,
    /// Name for what bare manifests become: the one resource, or the bundle of them all.
    #[arg(long)]
    name: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConsumerCmd {
    #[command(flatten)]
    hub: HubArgs,
    #[command(subcommand)]
    action: ConsumerAction,
}

#[derive(Debug, Subcommand)]
enum ConsumerAction {
    /// List consumers.
    List(ListArgs),
    /// Show one consumer, by name or id.
    Get { name: String },
    /// Register a cluster as a consumer.
    Create {
        name: String,
        /// A label to set; repeat for more.
        #[arg(short, long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
        labels: Vec<(String, String)>,
    },
    /// Set labels (KEY=VALUE) or remove them (KEY-); labels not named stay as they are.
    Label {
        name: String,
        #[arg(required = true, value_name = "KEY=VALUE|KEY-", value_parser = parse_label_change)]
        changes: Vec<LabelChange>,
    },
    /// Delete a consumer; the hub refuses while resources are still addressed to it.
    Delete { name: String },
}

#[derive(Debug, Args)]
pub struct ResourceCmd {
    #[command(flatten)]
    hub: HubArgs,
    #[command(subcommand)]
    action: ObjectAction,
}

#[derive(Debug, Args)]
pub struct BundleCmd {
    #[command(flatten)]
    hub: HubArgs,
    #[command(subcommand)]
    action: ObjectAction,
}

/// Resources and bundles take the same verbs.
#[derive(Debug, Subcommand)]
enum ObjectAction {
    /// List them.
    List(ListArgs),
    /// Show one, by id.
    Get { id: String },
    /// Create one per document of a file; fails on any that exists already.
    Create(FileArgs),
    /// Create, or update what exists (matched by id, else by consumer and name).
    Apply(FileArgs),
    /// Ask for deletion; the object stays, marked deleting, until its agent confirms.
    Delete { id: String },
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, found {text:?}")),
    }
}

#[derive(Debug, Clone)]
enum LabelChange {
    Set(String, String),
    Remove(String),
}

fn parse_label_change(text: &str) -> Result<LabelChange, String> {
    if let Some(key) = text.strip_suffix('-').filter(|key| !key.is_empty() && !key.contains('=')) {
        return Ok(LabelChange::Remove(key.to_string()));
    }
    parse_label(text)
        .map(|(key, value)| LabelChange::Set(key, value))
        .map_err(|_| format!("expected KEY=VALUE to set a label or KEY- to remove one, found {text:?}"))
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

pub async fn consumer(cmd: ConsumerCmd) -> anyhow::Result<()> {
    finish(run_consumer(cmd).await)
}

pub async fn resource(cmd: ResourceCmd) -> anyhow::Result<()> {
    finish(run_objects(RESOURCE, cmd.hub, cmd.action).await)
}

pub async fn bundle(cmd: BundleCmd) -> anyhow::Result<()> {
    finish(run_objects(BUNDLE, cmd.hub, cmd.action).await)
}

/// Reports a failure the way a person reads it and exits with status 1; `main`'s own report
/// would be a debug dump.
fn finish(result: anyhow::Result<()>) -> anyhow::Result<()> {
    let Err(err) = result else { return Ok(()) };
    eprint!("{}", report(&err));
    std::process::exit(1);
}

/// `error: <what failed>: <why>`, then what the hub said about each field, then hints.
fn report(err: &anyhow::Error) -> String {
    let mut text = format!("error: {err:#}\n");
    if let Some(request) = err.chain().find_map(|cause| cause.downcast_ref::<RequestError>()) {
        for line in request.notes() {
            text.push_str(&line);
            text.push('\n');
        }
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Talking to the hub
// ---------------------------------------------------------------------------------------------

/// Maestro's error body; only what a person is shown is read.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    details: Vec<Detail>,
    #[serde(default)]
    operation_id: Option<String>,
    #[serde(default)]
    current_version: Option<i64>,
}

impl ErrorBody {
    /// The hub's reason, less the one field problem it repeats, which gets its own line.
    fn headline(&self) -> &str {
        let [only] = self.details.as_slice() else {
            return &self.reason;
        };
        let repeated = format!(": {}: {}", only.field, only.message);
        self.reason.strip_suffix(&repeated).unwrap_or(&self.reason)
    }
}

#[derive(Debug, Deserialize)]
struct Detail {
    #[serde(default)]
    field: String,
    #[serde(default)]
    message: String,
}

#[derive(Debug, thiserror::Error)]
enum RequestError {
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
    fn status(&self) -> Option<StatusCode> {
        match self {
            RequestError::Refused { status, .. } | RequestError::Unexpected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A 409 because someone else wrote since `read`, as opposed to one because the object is
    /// being deleted: only the first is worth re-reading for.
    fn is_stale_version(&self, read: i64) -> bool {
        matches!(self, RequestError::Refused { status: StatusCode::CONFLICT, body, .. }
            if body.current_version.is_some_and(|current| current != read))
    }

    /// Lines under the `error:` line: the hub's per-field details, its operation id, and what
    /// to try next.
    fn notes(&self) -> Vec<String> {
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
struct Hub {
    http: reqwest::Client,
    base: String,
    /// The address as messages show it: without any user or password.
    shown: String,
    token: Option<Secret>,
    timeout: Duration,
}

impl Hub {
    fn connect(args: &HubArgs) -> anyhow::Result<Hub> {
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

    async fn get(&self, path: &str) -> Result<Value, RequestError> {
        Ok(self.call(Method::GET, path, &[], None).await?.unwrap_or(Value::Null))
    }

    async fn send(&self, method: Method, path: &str, body: &Value) -> Result<Value, RequestError> {
        Ok(self.call(method, path, &[], Some(body)).await?.unwrap_or(Value::Null))
    }

    async fn delete(&self, path: &str) -> Result<(), RequestError> {
        self.call(Method::DELETE, path, &[], None).await.map(|_| ())
    }

    /// One request; `None` for an empty success (a 204).
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Option<Value>, RequestError> {
        let mut request = self.http.request(method, format!("{}{API}{path}", self.base));
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(&token.0);
        }
        if let Some(body) = body {
            request = request.json(body);
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

    fn failed(&self, err: &reqwest::Error) -> RequestError {
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

    fn refused(&self, status: StatusCode, bytes: &[u8]) -> RequestError {
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
    async fn list(&self, path: &str, args: &ListArgs) -> Result<Listing, RequestError> {
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
struct Listing {
    items: Vec<Value>,
    total: i64,
}

/// The innermost cause is the one a person can act on ("Connection refused"); the outer ones
/// only repeat the URL.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

fn read_token(path: &PathBuf) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading --token-file {}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("--token-file {} is empty", path.display());
    }
    Ok(Secret(token.to_string()))
}

/// Percent-encodes a path segment, so a name can never reach another endpoint.
fn segment(text: &str) -> String {
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
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

// ---------------------------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------------------------

/// What a command prints: rows for the table, the objects for JSON and YAML.
struct Printer {
    format: Format,
}

impl Printer {
    fn list(&self, listing: &Listing, columns: Columns, plural: &str, all: bool) -> anyhow::Result<()> {
        if self.format != Format::Table {
            return Ok(output::emit(&output::machine(self.format, &Value::Array(listing.items.clone()))?)?);
        }
        if listing.items.is_empty() {
            eprintln!("no {plural} found");
            return Ok(());
        }
        output::emit(&output::table(&listing.items, columns))?;
        if !all && (listing.items.len() as i64) < listing.total {
            eprintln!(
                "{} of {} {plural} shown; see --page and --size, or --all for every page",
                listing.items.len(),
                listing.total
            );
        }
        Ok(())
    }

    fn one(&self, item: &Value, columns: Columns) -> anyhow::Result<()> {
        match self.format {
            Format::Table => output::emit(&output::table(std::slice::from_ref(item), columns))?,
            format => output::emit(&output::machine(format, item)?)?,
        }
        Ok(())
    }

    /// What changed: a line for people; the objects for machines, where the line goes to
    /// stderr so stdout stays parseable.
    fn outcome(&self, line: &str) -> anyhow::Result<()> {
        match self.format {
            Format::Table => output::emit(&format!("{line}\n"))?,
            _ => eprintln!("{line}"),
        }
        Ok(())
    }

    /// Objects written: the one object, or an array of several.
    fn written(&self, objects: Vec<Value>) -> anyhow::Result<()> {
        if self.format == Format::Table {
            return Ok(());
        }
        let value = match <[Value; 1]>::try_from(objects) {
            Ok([one]) => one,
            Err(many) => Value::Array(many),
        };
        Ok(output::emit(&output::machine(self.format, &value)?)?)
    }
}

// ---------------------------------------------------------------------------------------------
// Consumers
// ---------------------------------------------------------------------------------------------

async fn run_consumer(cmd: ConsumerCmd) -> anyhow::Result<()> {
    let hub = Hub::connect(&cmd.hub)?;
    let printer = Printer { format: cmd.hub.output };
    match cmd.action {
        ConsumerAction::List(args) => {
            let listing = hub.list("/consumers", &args).await.context("listing consumers")?;
            printer.list(&listing, Columns::Consumer, "consumers", args.all)
        }
        ConsumerAction::Get { name } => {
            let consumer = hub.get(&consumer_path(&name)).await?;
            printer.one(&consumer, Columns::Consumer)
        }
        ConsumerAction::Create { name, labels } => {
            let labels: Map<String, Value> = labels.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let body = json!({"name": name, "labels": labels});
            let created = hub
                .send(Method::POST, "/consumers", &body)
                .await
                .with_context(|| format!("creating consumer {name}"))?;
            printer.outcome(&format!("consumer {name} created (id {})", field(&created, "id")))?;
            printer.written(vec![created])
        }
        ConsumerAction::Label { name, changes } => {
            let labelled = label(&hub, &name, &changes).await.with_context(|| format!("labelling consumer {name}"))?;
            printer.outcome(&format!("consumer {name} labelled"))?;
            printer.written(vec![labelled])
        }
        ConsumerAction::Delete { name } => {
            hub.delete(&consumer_path(&name)).await.with_context(|| format!("deleting consumer {name}"))?;
            printer.outcome(&format!("consumer {name} deleted"))
        }
    }
}

fn consumer_path(name: &str) -> String {
    format!("/consumers/{}", segment(name))
}

/// The API replaces all labels at once, so the changes are applied to the labels just read.
async fn label(hub: &Hub, name: &str, changes: &[LabelChange]) -> Result<Value, RequestError> {
    let current = hub.get(&consumer_path(name)).await?;
    let mut labels = current.get("labels").and_then(Value::as_object).cloned().unwrap_or_default();
    for change in changes {
        match change {
            LabelChange::Set(key, value) => labels.insert(key.clone(), Value::String(value.clone())),
            LabelChange::Remove(key) => labels.remove(key),
        };
    }
    hub.send(Method::PATCH, &consumer_path(name), &json!({"labels": labels})).await
}

fn field(object: &Value, name: &str) -> String {
    match object.get(name) {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => "?".to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Resources and bundles
// ---------------------------------------------------------------------------------------------

/// What differs between the resource and the bundle commands.
#[derive(Debug, Clone, Copy)]
struct Kind {
    noun: &'static str,
    plural: &'static str,
    path: &'static str,
    columns: Columns,
    /// The field that makes a document an API object of this kind rather than a bare manifest.
    object_key: &'static str,
}

const RESOURCE: Kind = Kind {
    noun: "resource",
    plural: "resources",
    path: "/resources",
    columns: Columns::Resource,
    object_key: "manifest",
};
const BUNDLE: Kind = Kind {
    noun: "bundle",
    plural: "bundles",
    path: "/resource-bundles",
    columns: Columns::Bundle,
    object_key: "manifests",
};

impl Kind {
    fn item_path(self, id: &str) -> String {
        format!("{}/{}", self.path, segment(id))
    }
}

async fn run_objects(kind: Kind, args: HubArgs, action: ObjectAction) -> anyhow::Result<()> {
    let hub = Hub::connect(&args)?;
    let printer = Printer { format: args.output };
    match action {
        ObjectAction::List(list) => {
            let listing = hub.list(kind.path, &list).await.with_context(|| format!("listing {}", kind.plural))?;
            printer.list(&listing, kind.columns, kind.plural, list.all)
        }
        ObjectAction::Get { id } => {
            let object = hub.get(&kind.item_path(&id)).await?;
            printer.one(&object, kind.columns)
        }
        ObjectAction::Create(files) => write(&hub, &printer, kind, &files, Mode::Create).await,
        ObjectAction::Apply(files) => write(&hub, &printer, kind, &files, Mode::Apply).await,
        ObjectAction::Delete { id } => {
            hub.delete(&kind.item_path(&id)).await.with_context(|| format!("deleting {} {id}", kind.noun))?;
            printer.outcome(&format!("{} {id} marked for deletion; it goes once its agent confirms", kind.noun))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Apply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Created,
    Updated,
    Unchanged,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
        })
    }
}

/// Sends every request body built from the file, in order, stopping at the first failure:
/// later documents may depend on earlier ones.
async fn write(hub: &Hub, printer: &Printer, kind: Kind, files: &FileArgs, mode: Mode) -> anyhow::Result<()> {
    let (label, text) = read_input(&files.file)?;
    let documents = parse_documents(&label, &text)?;
    let items = classify(documents, kind.object_key)?;
    let bodies = match kind.columns {
        Columns::Resource => resource_bodies(items, files)?,
        _ => bundle_bodies(items, files, &label, mode)?,
    };
    let mut written = Vec::with_capacity(bodies.len());
    for Body { origin, fields } in bodies {
        let result = match mode {
            Mode::Create => {
                hub.send(Method::POST, kind.path, &Value::Object(fields)).await.map(|object| (Outcome::Created, object))
            }
            Mode::Apply => apply(hub, kind, &fields).await,
        };
        let (outcome, object) = result.context(origin)?;
        printer.outcome(&format!(
            "{} {} {outcome} (id {}, version {})",
            kind.noun,
            field(&object, "name"),
            field(&object, "id"),
            field(&object, "version")
        ))?;
        written.push(object);
    }
    printer.written(written)
}

/// Creates the object, or updates the one that exists with the version just read. A write
/// that lost a race is retried once on a fresh read; a second loss is reported.
async fn apply(hub: &Hub, kind: Kind, body: &Map<String, Value>) -> Result<(Outcome, Value), RequestError> {
    let Some(mut current) = find_existing(hub, kind, body).await? else {
        let created = hub.send(Method::POST, kind.path, &Value::Object(body.clone())).await?;
        return Ok((Outcome::Created, created));
    };
    let id = field(&current, "id");
    let mut retried = false;
    loop {
        let read = current.get("version").and_then(Value::as_i64).unwrap_or_default();
        let mut update = body.clone();
        update.insert("version".into(), json!(read));
        match hub.send(Method::PUT, &kind.item_path(&id), &Value::Object(update)).await {
            Ok(object) => {
                let moved = object.get("version").and_then(Value::as_i64) != Some(read);
                return Ok((if moved { Outcome::Updated } else { Outcome::Unchanged }, object));
            }
            Err(err) if !retried && err.is_stale_version(read) => {
                retried = true;
                current = hub.get(&kind.item_path(&id)).await?;
            }
            Err(err) => return Err(err),
        }
    }
}

/// The stored object a body is about: by `id` when it has one, else by consumer and name.
async fn find_existing(hub: &Hub, kind: Kind, body: &Map<String, Value>) -> Result<Option<Value>, RequestError> {
    let text = |name: &str| body.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    if let Some(id) = text("id") {
        return match hub.get(&kind.item_path(id)).await {
            Ok(object) => Ok(Some(object)),
            Err(err) if err.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(err) => Err(err),
        };
    }
    let (Some(consumer), Some(name)) = (text("consumer_name"), text("name")) else {
        return Ok(None);
    };
    let search = format!("consumer_name = {} and name = {}", quote(consumer), quote(name));
    let page = hub.call(Method::GET, kind.path, &[("search", search)], None).await?.unwrap_or(Value::Null);
    Ok(page.get("items").and_then(Value::as_array).and_then(|items| items.first()).cloned())
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/// One document of a file, with where it came from for messages.
#[derive(Debug)]
pub(crate) struct Document {
    pub(crate) origin: String,
    pub(crate) value: Value,
}

pub(crate) fn read_input(file: &str) -> anyhow::Result<(String, String)> {
    if file == "-" {
        let text = std::io::read_to_string(std::io::stdin()).context("reading standard input")?;
        return Ok(("stdin".to_string(), text));
    }
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    Ok((file.to_string(), text))
}

/// YAML or JSON documents separated by `---`. JSON is read as YAML, of which it is nearly a
/// subset; a top-level list counts as one document per element. Empty documents are skipped.
pub(crate) fn parse_documents(label: &str, text: &str) -> anyhow::Result<Vec<Document>> {
    let mut documents = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let number = index + 1;
        let value = Value::deserialize(document)
            .with_context(|| format!("{label}: document {number} is not valid YAML or JSON"))?;
        match value {
            Value::Null => {}
            Value::Array(elements) => {
                documents.extend(elements.into_iter().enumerate().map(|(i, value)| Document {
                    origin: format!("{label}: document {number}, item {}", i + 1),
                    value,
                }))
            }
            value => documents.push(Document { origin: format!("{label}: document {number}"), value }),
        }
    }
    if documents.is_empty() {
        bail!("{label} holds no documents");
    }
    Ok(documents)
}

/// What a document turned out to be.
#[derive(Debug)]
enum Item {
    /// An API object (a resource or bundle as the hub shows it), sent nearly as written.
    Object(Map<String, Value>),
    /// A Kubernetes manifest, to be wrapped in an API object.
    Manifest(Value),
}

/// Tells API objects (which carry `object_key`: `manifest` or `manifests`) from bare manifests
/// (`apiVersion` and `kind`), and opens Kubernetes lists into their manifests.
fn classify(documents: Vec<Document>, object_key: &str) -> anyhow::Result<Vec<(String, Item)>> {
    let mut items = Vec::new();
    for Document { origin, value } in documents {
        let Value::Object(object) = value else {
            bail!("{origin} is {}, not a mapping", describe(&value));
        };
        if object.contains_key(object_key) {
            items.push((origin, Item::Object(object)));
        } else if is_manifest(&object) {
            match list_items(&object) {
                Some(elements) => {
                    for (i, element) in elements.iter().enumerate() {
                        let origin = format!("{origin}, list item {}", i + 1);
                        if !element.as_object().is_some_and(is_manifest) {
                            bail!("{origin} is not a Kubernetes manifest: it needs apiVersion and kind");
                        }
                        items.push((origin, Item::Manifest(element.clone())));
                    }
                }
                None => items.push((origin, Item::Manifest(Value::Object(object)))),
            }
        } else {
            bail!(
                "{origin} is neither an API object (with `{object_key}`) nor a Kubernetes manifest (with apiVersion and kind)"
            );
        }
    }
    Ok(items)
}

fn is_manifest(object: &Map<String, Value>) -> bool {
    object.get("apiVersion").is_some_and(Value::is_string) && object.get("kind").is_some_and(Value::is_string)
}

/// The manifests of a `List` (or `DeploymentList` and the like).
fn list_items(object: &Map<String, Value>) -> Option<&Vec<Value>> {
    let kind = object.get("kind").and_then(Value::as_str)?;
    if !kind.ends_with("List") {
        return None;
    }
    object.get("items").and_then(Value::as_array)
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A request body and the document it came from.
#[derive(Debug)]
struct Body {
    origin: String,
    fields: Map<String, Value>,
}

/// One resource per API object or bare manifest. A bare manifest's resource is named after
/// the manifest (unless --name says otherwise), so applying the same file again finds it.
fn resource_bodies(items: Vec<(String, Item)>, files: &FileArgs) -> anyhow::Result<Vec<Body>> {
    if files.name.is_some() && items.len() != 1 {
        bail!("--name names one resource, but {} describes {}", files.file, items.len());
    }
    let consumer = files.consumer.as_deref();
    let name = files.name.as_deref();
    items
        .into_iter()
        .map(|(origin, item)| {
            let fields = match item {
                Item::Object(object) => resource_object(&origin, object, consumer, name)?,
                Item::Manifest(manifest) => bare_resource(&origin, manifest, consumer, name)?,
            };
            Ok(Body { origin, fields })
        })
        .collect()
}

/// A resource as written, with the consumer and name filled in where it has none.
fn resource_object(
    origin: &str,
    mut object: Map<String, Value>,
    consumer: Option<&str>,
    name: Option<&str>,
) -> anyhow::Result<Map<String, Value>> {
    if let Some(name) = name {
        set_name(origin, &mut object, name)?;
    }
    if !object.contains_key("id")
        && !object.contains_key("name")
        && let Some(name) = object.get("manifest").and_then(derived_name)
    {
        object.insert("name".into(), Value::String(name));
    }
    with_consumer(origin, object, consumer)
}

fn bare_resource(
    origin: &str,
    manifest: Value,
    consumer: Option<&str>,
    name: Option<&str>,
) -> anyhow::Result<Map<String, Value>> {
    let consumer = bare_consumer(origin, &manifest, consumer)?;
    let mut object = Map::new();
    object.insert("consumer_name".into(), Value::String(consumer.to_string()));
    if let Some(name) = name.map(str::to_string).or_else(|| derived_name(&manifest)) {
        object.insert("name".into(), Value::String(name));
    }
    object.insert("manifest".into(), manifest);
    Ok(object)
}

/// One bundle per bundle object, plus one holding every bare manifest, in file order.
fn bundle_bodies(items: Vec<(String, Item)>, files: &FileArgs, label: &str, mode: Mode) -> anyhow::Result<Vec<Body>> {
    let consumer = files.consumer.as_deref();
    let mut bodies = Vec::new();
    let mut manifests = Vec::new();
    for (origin, item) in items {
        match item {
            Item::Object(object) => bodies.push(Body { fields: with_consumer(&origin, object, consumer)?, origin }),
            Item::Manifest(manifest) => {
                bare_consumer(&origin, &manifest, consumer)?;
                manifests.push(manifest);
            }
        }
    }
    let Some(consumer) = consumer.filter(|_| !manifests.is_empty()) else {
        if files.name.is_some() {
            bail!(
                "--name names the bundle made of bare manifests, but {label} has none; set `name` in the bundle objects"
            );
        }
        return Ok(bodies);
    };
    let mut fields = Map::new();
    fields.insert("consumer_name".into(), Value::String(consumer.to_string()));
    match &files.name {
        Some(name) => {
            fields.insert("name".into(), Value::String(name.clone()));
        }
        None if mode == Mode::Apply => {
            bail!("{label}: apply needs --name for the bundle made of its bare manifests, to find that bundle again");
        }
        None => {}
    }
    let origin = format!("{label}: bundle of {} bare manifests", manifests.len());
    fields.insert("manifests".into(), Value::Array(manifests));
    bodies.push(Body { origin, fields });
    Ok(bodies)
}

fn set_name(origin: &str, object: &mut Map<String, Value>, name: &str) -> anyhow::Result<()> {
    match object.get("name").and_then(Value::as_str) {
        Some(own) if own != name => bail!("{origin} is named '{own}' but --name says '{name}'"),
        _ => {
            object.insert("name".into(), Value::String(name.to_string()));
            Ok(())
        }
    }
}

/// Fills in the consumer from --consumer, which must not contradict the document's own.
fn with_consumer(
    origin: &str,
    mut object: Map<String, Value>,
    consumer: Option<&str>,
) -> anyhow::Result<Map<String, Value>> {
    let own = object.get("consumer_name").and_then(Value::as_str).filter(|own| !own.is_empty());
    match (own, consumer) {
        (Some(own), Some(flag)) if own != flag => {
            bail!("{origin} is for consumer '{own}' but --consumer says '{flag}'")
        }
        (Some(_), _) => {}
        (None, Some(flag)) => {
            object.insert("consumer_name".into(), Value::String(flag.to_string()));
        }
        // An update by id needs no consumer; a create without one is refused by the hub.
        (None, None) if object.contains_key("id") => {}
        (None, None) => {
            bail!("{origin} has no consumer_name; say which consumer gets it with --consumer NAME")
        }
    }
    Ok(object)
}

fn bare_consumer<'a>(origin: &str, manifest: &Value, consumer: Option<&'a str>) -> anyhow::Result<&'a str> {
    consumer.ok_or_else(|| {
        let kind = manifest.get("kind").and_then(Value::as_str).unwrap_or("object");
        let name = manifest.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("without a name");
        anyhow!(
            "{origin} is a bare Kubernetes manifest ({kind} {name}); say which consumer gets it with --consumer NAME"
        )
    })
}

/// `kind.namespace.name` (or `kind.name` when cluster-scoped), lower-cased and cut to what a
/// DNS-1123 subdomain allows, so the same manifest always gets the same resource name.
fn derived_name(manifest: &Value) -> Option<String> {
    let kind = manifest.get("kind").and_then(Value::as_str)?;
    let name = manifest.pointer("/metadata/name").and_then(Value::as_str)?;
    let namespace = manifest.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    let parts: Vec<String> =
        [kind, namespace, name].iter().map(|part| dns_part(part)).filter(|p| !p.is_empty()).collect();
    let mut text = parts.join(".");
    text.truncate(253);
    let text = text.trim_end_matches(['-', '.']).to_string();
    (!text.is_empty()).then_some(text)
}

fn dns_part(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' })
        .collect();
    mapped.split('.').map(|p| p.trim_matches('-')).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(consumer: Option<&str>, name: Option<&str>) -> FileArgs {
        FileArgs { file: "f.yaml".into(), consumer: consumer.map(Into::into), name: name.map(Into::into) }
    }

    #[test]
    fn documents_are_split_and_a_broken_one_is_named_by_number() {
        let docs = parse_documents("f.yaml", "---\na: 1\n---\n{\"b\": 2}\n---\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].origin, "f.yaml: document 2");
        let err = parse_documents("f.yaml", "a: 1\n---\nb: [1\n").unwrap_err();
        assert!(format!("{err:#}").contains("f.yaml: document 2 is not valid"), "{err:#}");
    }

    #[test]
    fn a_kubernetes_list_opens_into_its_manifests() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n";
        let items = classify(parse_documents("f", text).unwrap(), "manifests").unwrap();
        assert_eq!(items.len(), 2);
        assert!(matches!(&items[1].1, Item::Manifest(m) if m["kind"] == "Secret"));
    }

    #[test]
    fn a_bare_manifest_becomes_a_resource_named_after_it() {
        let manifest = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "Web_1", "namespace": "default"}});
        let bodies = resource_bodies(vec![("d".into(), Item::Manifest(manifest))], &files(Some("c1"), None)).unwrap();
        assert_eq!(bodies[0].fields["name"], "deployment.default.web-1");
        assert_eq!(bodies[0].fields["consumer_name"], "c1");
    }

    #[test]
    fn a_bare_manifest_without_consumer_asks_for_one() {
        let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        let err =
            resource_bodies(vec![("f: document 1".into(), Item::Manifest(manifest))], &files(None, None)).unwrap_err();
        assert!(err.to_string().contains("--consumer"), "{err}");
    }

    #[test]
    fn consumer_flag_must_agree_with_the_document() {
        let object = json!({"consumer_name": "c1", "manifest": {}}).as_object().cloned().unwrap();
        assert!(with_consumer("d", object, Some("c2")).unwrap_err().to_string().contains("--consumer says 'c2'"));
    }

    #[test]
    fn bare_manifests_make_one_bundle_which_apply_needs_named() {
        let m =
            |name: &str| Item::Manifest(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}));
        let items = || vec![("a".into(), m("a")), ("b".into(), m("b"))];
        let bodies = bundle_bodies(items(), &files(Some("c1"), Some("web")), "f", Mode::Apply).unwrap();
        assert_eq!(bodies.len(), 1);
        assert_eq!(bodies[0].fields["manifests"].as_array().map(Vec::len), Some(2));
        assert!(bundle_bodies(items(), &files(Some("c1"), None), "f", Mode::Apply).is_err());
        assert!(bundle_bodies(items(), &files(Some("c1"), None), "f", Mode::Create).is_ok());
    }

    #[test]
    fn label_changes_set_or_remove() {
        assert!(matches!(parse_label_change("env=prod"), Ok(LabelChange::Set(k, v)) if k == "env" && v == "prod"));
        assert!(matches!(parse_label_change("env-"), Ok(LabelChange::Remove(k)) if k == "env"));
        assert!(parse_label_change("env").is_err());
    }

    #[test]
    fn search_literals_and_path_segments_are_escaped() {
        assert_eq!(quote("it's"), "'it''s'");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn a_single_field_problem_is_said_once() {
        let body: ErrorBody = serde_json::from_value(json!({
            "reason": "invalid resource: manifest.metadata.name: bad", "operation_id": "op1",
            "details": [{"field": "manifest.metadata.name", "message": "bad"}]
        }))
        .unwrap();
        let err =
            anyhow::Error::from(RequestError::Refused { status: StatusCode::BAD_REQUEST, body, sent_token: false });
        assert_eq!(
            report(&err.context("f: document 1")),
            "error: f: document 1: invalid resource\n  manifest.metadata.name: bad\n  operation id: op1\n"
        );
    }

    /// A hub whose every PUT loses a race `conflicts` times before it succeeds; returns its
    /// address and the PUT counter.
    async fn racing_hub(conflicts: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use axum::extract::State;
        use axum::routing::get;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let puts = Arc::new(AtomicUsize::new(0));
        let put = move |State(puts): State<Arc<AtomicUsize>>, axum::Json(body): axum::Json<Value>| async move {
            let read = body["version"].as_i64().unwrap_or_default();
            if puts.fetch_add(1, Ordering::SeqCst) < conflicts {
                let stale = json!({"reason": "version is stale", "current_version": read + 1});
                return (StatusCode::CONFLICT, axum::Json(stale));
            }
            (StatusCode::OK, axum::Json(json!({"id": "r1", "name": "web", "version": read + 1})))
        };
        let app = axum::Router::new()
            .route(
                "/api/maestro/v1/resources",
                get(|| async { axum::Json(json!({"items": [{"id": "r1", "version": 1}], "total": 1})) }),
            )
            .route(
                "/api/maestro/v1/resources/{id}",
                get(|| async { axum::Json(json!({"id": "r1", "version": 2})) }).put(put),
            )
            .with_state(puts.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), puts)
    }

    fn hub_at(server: String) -> Hub {
        maestro_net::install_crypto_provider();
        let args =
            HubArgs { server, token: None, token_file: None, output: Format::Table, timeout: Duration::from_secs(5) };
        Hub::connect(&args).unwrap()
    }

    #[tokio::test]
    async fn apply_rereads_and_retries_once_when_another_writer_won() {
        let (server, puts) = racing_hub(1).await;
        let body = json!({"consumer_name": "c1", "name": "web", "manifest": {}}).as_object().cloned().unwrap();
        let (outcome, object) = apply(&hub_at(server), RESOURCE, &body).await.unwrap();
        assert_eq!((outcome, object["version"].as_i64()), (Outcome::Updated, Some(3)));
        assert_eq!(puts.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn apply_reports_a_second_lost_race() {
        let (server, puts) = racing_hub(2).await;
        let body = json!({"consumer_name": "c1", "name": "web", "manifest": {}}).as_object().cloned().unwrap();
        let err = apply(&hub_at(server), RESOURCE, &body).await.unwrap_err();
        assert!(err.is_stale_version(2), "{err}");
        assert_eq!(puts.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn tokens_do_not_show_in_debug_output() {
        assert_eq!(format!("{:?}", Secret("s3cret".into())), "Secret(<hidden>)");
    }
}
