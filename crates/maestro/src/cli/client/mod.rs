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

mod consumers;
mod files;
mod hub;
mod objects;
mod packages;
mod print;

use consumers::*;
use files::*;
pub(crate) use files::{parse_documents, read_input};
use hub::*;
use objects::*;
pub use packages::{list_packages, push_package};
use print::*;

// Command line

/// How to reach the hub and how to show what it says; shared by every client command.
#[derive(Debug, Args)]
#[command(next_help_heading = "Hub and output")]
pub struct HubArgs {
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
    Delete {
        name: String,
        /// Force-delete its resources first, without waiting for its agent (which may leave
        /// objects in the cluster if the agent never comes back).
        #[arg(long)]
        cascade: bool,
    },
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
    Delete {
        id: String,
        /// Remove it now without waiting for its agent (for one whose agent is gone): the agent
        /// is still told, if it is connected or comes back.
        #[arg(long)]
        force: bool,
    },
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

// Entry points

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
