//! The `maestro consumer|resource|bundle` commands as a person uses them: the real binary
//! against a real hub, each test with a hub and database of its own.

use std::path::PathBuf;
use std::process::Stdio;

use maestro_hub::api::auth::AuthConfig;
use maestro_hub::{HubConfig, RunningHub};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;

/// A hub on a free port with its SQLite file in a temporary directory.
struct Hub {
    hub: RunningHub,
    dir: TempDir,
}

impl Hub {
    async fn start() -> anyhow::Result<Hub> {
        Hub::start_with(AuthConfig::default()).await
    }

    async fn start_with(auth: AuthConfig) -> anyhow::Result<Hub> {
        let dir = tempfile::tempdir()?;
        let hub = maestro_hub::start(HubConfig {
            bind: "127.0.0.1:0".parse()?,
            database_url: format!("sqlite://{}/m.db", dir.path().display()),
            db: Default::default(),
            limits: Default::default(),
            auth,
            plugins: None,
        })
        .await?;
        Ok(Hub { hub, dir })
    }

    fn file(&self, name: &str, text: &str) -> anyhow::Result<String> {
        let path: PathBuf = self.dir.path().join(name);
        std::fs::write(&path, text)?;
        Ok(path.display().to_string())
    }

    async fn maestro(&self, args: &[&str]) -> anyhow::Result<Run> {
        run(&self.hub.url(), args, None).await
    }

    async fn maestro_with_stdin(&self, args: &[&str], stdin: &str) -> anyhow::Result<Run> {
        run(&self.hub.url(), args, Some(stdin)).await
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.hub.shutdown().await?;
        Ok(())
    }
}

/// What one run of the binary printed.
#[derive(Debug)]
struct Run {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert!(self.success, "expected success, got {:?}:\n{}", self.code, self.stderr);
        self
    }

    fn failed(self) -> Run {
        assert_eq!(self.code, Some(1), "expected exit code 1; stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        assert!(self.stderr.starts_with("error: "), "stderr: {}", self.stderr);
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}", self.stdout))
    }
}

async fn run(server: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<Run> {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(args)
        .env("MAESTRO_SERVER", server)
        .env_remove("MAESTRO_TOKEN")
        .env("MAESTRO_LOG", "warn")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await?;
    }
    let output = child.wait_with_output().await?;
    Ok(Run {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout)?,
        stderr: String::from_utf8(output.stderr)?,
    })
}

/// The table row whose first cell is `first`, split into cells.
fn row(table: &str, first: &str) -> Vec<String> {
    table
        .lines()
        .map(|line| line.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cells| cells.first().map(String::as_str) == Some(first))
        .unwrap_or_else(|| panic!("no row {first:?} in:\n{table}"))
}

fn deployment(replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\nspec:\n  replicas: {replicas}\n"
    )
}

const APP: &str = "\
# A ConfigMap, then a List of two more manifests: three in all.
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {mode: fast}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ServiceAccount
  metadata: {name: shop, namespace: shop}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: shop, namespace: shop}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_are_created_listed_labelled_and_deleted() -> anyhow::Result<()> {
    let hub = Hub::start().await?;
    let created = hub.maestro(&["consumer", "create", "east", "--label", "env=prod", "-l", "tier=web"]).await?.ok();
    assert!(created.stdout.starts_with("consumer east created (id "), "{}", created.stdout);
    hub.maestro(&["consumer", "create", "west"]).await?.ok();

    let table = hub.maestro(&["consumer", "list"]).await?.ok().stdout;
    assert_eq!(
        table.lines().next().map(|h| h.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["NAME", "ID", "LABELS", "AGE"])
    );
    assert_eq!(row(&table, "east")[2], "env=prod,tier=web");
    assert_eq!(row(&table, "west")[2], "<none>");

    let listed = hub.maestro(&["consumer", "list", "-o", "json"]).await?.ok().json();
    let names: Vec<&str> = listed.as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"east") && names.contains(&"west"));

    let east = hub.maestro(&["consumer", "get", "east", "-o", "json"]).await?.ok().json();
    assert_eq!(east["kind"], "Consumer");
    assert_eq!(east["labels"]["env"], "prod");

    let labelled = hub.maestro(&["consumer", "label", "east", "env-", "team=blue", "-o", "json"]).await?.ok().json();
    assert_eq!(labelled["labels"], serde_json::json!({"tier": "web", "team": "blue"}));
    let by_id = hub.maestro(&["consumer", "get", east["id"].as_str().unwrap_or_default()]).await?.ok().stdout;
    let labels = &row(&by_id, "east")[2];
    assert!(labels.contains("tier=web") && labels.contains("team=blue") && !labels.contains("env"), "{labels}");

    let deleted = hub.maestro(&["consumer", "delete", "west"]).await?.ok();
    assert_eq!(deleted.stdout, "consumer west deleted\n");
    let table = hub.maestro(&["consumer", "list"]).await?.ok().stdout;
    assert!(!table.contains("west"), "{table}");
    let gone = hub.maestro(&["consumer", "get", "west"]).await?.failed();
    assert!(gone.stderr.contains("not found"), "{}", gone.stderr);
    hub.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_manifest_is_created_then_applied_updated_then_unchanged() -> anyhow::Result<()> {
    let hub = Hub::start().await?;
    hub.maestro(&["consumer", "create", "c1"]).await?.ok();
    let file = hub.file("web.yaml", &deployment(1))?;

    let created = hub.maestro(&["resource", "create", "-f", &file, "--consumer", "c1"]).await?.ok().stdout;
    assert!(created.starts_with("resource deployment.default.web created (id "), "{created}");
    assert!(created.trim_end().ends_with("version 1)"), "{created}");

    hub.file("web.yaml", &deployment(3))?;
    let updated = hub.maestro(&["resource", "apply", "-f", &file, "--consumer", "c1"]).await?.ok().stdout;
    assert!(updated.contains(" updated ") && updated.trim_end().ends_with("version 2)"), "{updated}");

    let again = hub.maestro(&["resource", "apply", "-f", &file, "--consumer", "c1"]).await?.ok().stdout;
    assert!(again.contains(" unchanged ") && again.trim_end().ends_with("version 2)"), "{again}");

    let listed = hub.maestro(&["resource", "list", "-o", "json"]).await?.ok().json();
    let [resource] = listed.as_array().map(Vec::as_slice).unwrap_or_default() else { panic!("one resource: {listed}") };
    assert_eq!((resource["version"].as_i64(), &resource["manifest"]["spec"]["replicas"]), (Some(2), &Value::from(3)));

    let id = resource["id"].as_str().unwrap_or_default();
    let table = hub.maestro(&["resource", "list"]).await?.ok().stdout;
    assert_eq!(row(&table, "ID"), ["ID", "CONSUMER", "KIND", "NAME", "VERSION", "STATUS", "AGE"]);
    assert_eq!(row(&table, id)[1..6], ["c1", "Deployment", "default/web", "2", "Pending"]);

    let deleted = hub.maestro(&["resource", "delete", id]).await?.ok().stdout;
    assert!(deleted.contains("marked for deletion"), "{deleted}");
    let table = hub.maestro(&["resource", "get", id]).await?.ok().stdout;
    assert_eq!(row(&table, id)[5], "Deleting");

    // No agent will confirm: the consumer is held until the delete is forced.
    hub.maestro(&["consumer", "delete", "c1"]).await?.failed();
    let forced = hub.maestro(&["resource", "delete", id, "--force"]).await?.ok().stdout;
    assert!(forced.contains("deleted without waiting for its agent"), "{forced}");
    hub.maestro(&["resource", "get", id]).await?.failed();
    hub.maestro(&["consumer", "delete", "c1"]).await?.ok();
    hub.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_apply_turns_a_multi_document_file_into_one_bundle() -> anyhow::Result<()> {
    let hub = Hub::start().await?;
    hub.maestro(&["consumer", "create", "c1"]).await?.ok();
    let file = hub.file("app.yaml", APP)?;

    let created =
        hub.maestro(&["bundle", "apply", "-f", &file, "--consumer", "c1", "--name", "shop"]).await?.ok().stdout;
    assert!(created.starts_with("bundle shop created (id "), "{created}");
    let again = hub.maestro(&["bundle", "apply", "-f", &file, "--consumer", "c1", "--name", "shop"]).await?.ok().stdout;
    assert!(again.starts_with("bundle shop unchanged (id "), "{again}");

    let table = hub.maestro(&["bundle", "list"]).await?.ok().stdout;
    assert_eq!(row(&table, "ID"), ["ID", "NAME", "CONSUMER", "MANIFESTS", "VERSION", "STATUS", "AGE"]);
    let shop = table.lines().find(|line| line.contains(" shop ")).unwrap_or_default();
    assert_eq!(shop.split_whitespace().collect::<Vec<_>>()[1..6], ["shop", "c1", "3", "1", "Pending"]);

    let unnamed = hub.maestro(&["bundle", "apply", "-f", &file, "--consumer", "c1"]).await?.failed();
    assert!(unnamed.stderr.contains("--name"), "{}", unnamed.stderr);
    hub.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_objects_apply_one_per_document_and_update_by_name() -> anyhow::Result<()> {
    let hub = Hub::start().await?;
    hub.maestro(&["consumer", "create", "c1"]).await?.ok();
    let bundles = |mode: &str| {
        format!(
            "name: one\nconsumer_name: c1\nmanifests:\n- {{apiVersion: v1, kind: ConfigMap, metadata: {{name: a, namespace: x}}, data: {{mode: {mode}}}}}\n\
             ---\n{{\"name\": \"two\", \"manifests\": [{{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {{\"name\": \"x\"}}}}]}}\n"
        )
    };
    let file = hub.file("bundles.yaml", &bundles("fast"))?;
    let first = hub.maestro(&["bundle", "apply", "-f", &file, "--consumer", "c1"]).await?.ok().stdout;
    let outcomes: Vec<&str> = first.lines().map(|l| l.split_whitespace().nth(2).unwrap_or_default()).collect();
    assert_eq!(outcomes, ["created", "created"], "{first}");

    hub.file("bundles.yaml", &bundles("slow"))?;
    let second = hub.maestro(&["bundle", "apply", "-f", &file, "--consumer", "c1"]).await?.ok().stdout;
    assert!(second.starts_with("bundle one updated ") && second.contains("bundle two unchanged "), "{second}");
    hub.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_output_parses_back_and_applies_unchanged_from_stdin() -> anyhow::Result<()> {
    let hub = Hub::start().await?;
    hub.maestro(&["consumer", "create", "c1"]).await?.ok();
    let file = hub.file("web.yaml", &deployment(2))?;
    hub.maestro(&["resource", "create", "-f", &file, "--consumer", "c1"]).await?.ok();

    let listed = hub.maestro(&["resource", "list", "-o", "yaml"]).await?.ok().stdout;
    let items: Vec<Value> = serde_yaml::from_str(&listed)?;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["manifest"]["kind"], "Deployment");
    let id = items[0]["id"].as_str().unwrap_or_default();

    let one = hub.maestro(&["resource", "get", id, "-o", "yaml"]).await?.ok().stdout;
    let parsed: Value = serde_yaml::from_str(&one)?;
    assert_eq!(parsed, items[0]);

    let reapplied = hub.maestro_with_stdin(&["resource", "apply", "-f", "-"], &one).await?.ok().stdout;
    assert!(reapplied.contains(&format!("unchanged (id {id}, version 1)")), "{reapplied}");
    hub.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_narrows_with_search_and_follows_pages_with_all() -> anyhow::Result<()> {
    let hub = Hub::start().await?;
    for consumer in ["c1", "c2"] {
        hub.maestro(&["consumer", "create", consumer]).await?.ok();
    }
    let file = hub.file("web.yaml", &deployment(1))?;
    for consumer in ["c1", "c2"] {
        hub.maestro(&["resource", "create", "-f", &file, "--consumer", consumer]).await?.ok();
    }

    let found = hub.maestro(&["resource", "list", "--search", "consumer_name = 'c2'", "-o", "json"]).await?.ok().json();
    let consumers: Vec<&str> =
        found.as_array().into_iter().flatten().filter_map(|r| r["consumer_name"].as_str()).collect();
    assert_eq!(consumers, ["c2"]);

    let page = hub.maestro(&["consumer", "list", "--size", "1", "--order-by", "name"]).await?.ok();
    assert_eq!(row(&page.stdout, "c1")[0], "c1");
    let names: Vec<&str> = page.stdout.lines().skip(1).filter_map(|line| line.split_whitespace().next()).collect();
    assert_eq!(names, ["c1"], "{}", page.stdout);
    assert!(page.stderr.contains("1 of 2 consumers shown"), "{}", page.stderr);
    let all = hub.maestro(&["consumer", "list", "--size", "1", "--all", "-o", "json"]).await?.ok().json();
    assert_eq!(all.as_array().map(Vec::len), Some(2));

    let empty = hub.maestro(&["bundle", "list", "--search", "name = 'nothing'"]).await?.ok();
    assert_eq!((empty.stdout.as_str(), empty.stderr.as_str()), ("", "no bundles found\n"));

    let typo = hub.maestro(&["resource", "list", "--search", "nmae = 'x'"]).await?.failed();
    assert!(typo.stderr.contains("unknown field 'nmae'"), "{}", typo.stderr);
    hub.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_does_not_parse_names_the_file_and_document() -> anyhow::Result<()> {
    let hub = Hub::start().await?;
    let file = hub.file("broken.yaml", &format!("{}---\nkind: [unclosed\n", deployment(1)))?;
    let run = hub.maestro(&["resource", "apply", "-f", &file, "--consumer", "c1"]).await?.failed();
    assert!(run.stderr.contains(&format!("{file}: document 2 is not valid YAML or JSON")), "{}", run.stderr);
    assert_eq!(run.stdout, "", "nothing is sent when the file is broken");
    hub.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_manifest_shows_the_hubs_field_path() -> anyhow::Result<()> {
    let hub = Hub::start().await?;
    hub.maestro(&["consumer", "create", "c1"]).await?.ok();
    let file = hub.file("bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_Valid\n")?;
    let run = hub.maestro(&["resource", "create", "-f", &file, "--consumer", "c1"]).await?.failed();
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines[0], format!("error: {file}: document 1: invalid resource"));
    assert!(lines[1].starts_with("  manifest.metadata.name: "), "{}", run.stderr);
    assert!(lines[2].starts_with("  operation id: "), "{}", run.stderr);
    hub.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_manifest_without_consumer_asks_for_one() -> anyhow::Result<()> {
    let hub = Hub::start().await?;
    let file = hub.file("web.yaml", &deployment(1))?;
    let run = hub.maestro(&["resource", "apply", "-f", &file]).await?.failed();
    assert!(run.stderr.contains("bare Kubernetes manifest (Deployment web)"), "{}", run.stderr);
    assert!(run.stderr.contains("--consumer NAME"), "{}", run.stderr);
    hub.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_is_not_running_is_named_with_what_to_do() -> anyhow::Result<()> {
    let free = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let server = format!("http://{free}");
    let run = run(&server, &["consumer", "list"], None).await?.failed();
    assert!(run.stderr.contains(&format!("cannot reach the hub at {server}")), "{}", run.stderr);
    assert!(run.stderr.contains("maestro server") && run.stderr.contains("--server"), "{}", run.stderr);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_does_not_answer_is_given_up_on_after_the_timeout() -> anyhow::Result<()> {
    // Accepts connections (the kernel does, from the backlog) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let server = format!("http://{}", silent.local_addr()?);
    let run = run(&server, &["consumer", "list", "--timeout", "300ms"], None).await?.failed();
    assert!(run.stderr.contains("did not answer within 300ms"), "{}", run.stderr);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_with_authentication_asks_for_a_token_and_never_sees_it_printed() -> anyhow::Result<()> {
    let tokens = tempfile::tempdir()?;
    let token_file = tokens.path().join("tokens");
    std::fs::write(&token_file, "s3cret-token\n")?;
    let hub = Hub::start_with(AuthConfig { token_file: Some(token_file.clone()), ..Default::default() }).await?;

    let anonymous = hub.maestro(&["consumer", "list"]).await?.failed();
    assert!(anonymous.stderr.contains("--token"), "{}", anonymous.stderr);

    let wrong = hub.maestro(&["consumer", "list", "--token", "wrong-token"]).await?.failed();
    assert!(wrong.stderr.contains("refused the token"), "{}", wrong.stderr);
    assert!(!wrong.stderr.contains("wrong-token"), "{}", wrong.stderr);

    let path = token_file.display().to_string();
    hub.maestro(&["consumer", "create", "c1", "--token-file", &path]).await?.ok();
    let listed = hub.maestro(&["consumer", "list", "--token-file", &path, "-o", "json"]).await?.ok();
    assert_eq!(listed.json().as_array().map(Vec::len), Some(1));
    assert!(!listed.stdout.contains("s3cret") && !listed.stderr.contains("s3cret"));
    hub.stop().await
}
