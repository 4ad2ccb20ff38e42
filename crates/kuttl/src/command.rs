//! The commands of suites, steps and asserts (SPEC.md §6.2): `command` is one program and its
//! arguments, split as a shell splits words (no shell runs), with `$NAMESPACE`, `$KUBECONFIG`
//! and `$PATH` expanded (`$$` is a dollar); `script` runs with `sh -c`. Both get `NAMESPACE`
//! and `KUBECONFIG` in their environment, and a time limit.
//!
//! With KUDO compatibility on, a command that calls KUDO's CLI (`kubectl kudo ...`,
//! `kubectl-kudo ...`, `./bin/kubectl-kudo ...`) runs as the same `maestro operator ...`
//! command; `init` has nothing to do, since the universal operator already runs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::model::Command;

/// Where and how commands run.
#[derive(Debug, Clone)]
pub struct Environment {
    pub namespace: String,
    pub kubeconfig: PathBuf,
    /// The working directory.
    pub dir: PathBuf,
    /// The `maestro` executable to run KUDO CLI calls with; `None`: no rewriting.
    pub kudo_compat: Option<PathBuf>,
    /// Used when a command sets no timeout.
    pub timeout: Duration,
    /// More environment variables for every command.
    pub env: Vec<(String, String)>,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// The command line as run (after expansion and rewriting).
    pub line: String,
    pub success: bool,
    /// Exit status, output tail, or why it could not run.
    pub detail: String,
    pub output: String,
    /// Set when KUDO compatibility rewrote the command.
    pub rewritten_from: Option<String>,
}

/// `$NAMESPACE`, `$KUBECONFIG` and `$PATH` expanded, `$$` kept as one `$`.
pub fn expand(text: &str, environment: &Environment) -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let replaced = [
            ("$", "$".to_string()),
            ("NAMESPACE", environment.namespace.clone()),
            ("KUBECONFIG", environment.kubeconfig.display().to_string()),
            ("PATH", path.clone()),
        ]
        .into_iter()
        .find(|(name, _)| after.starts_with(name));
        match replaced {
            Some((name, value)) => {
                out.push_str(&value);
                rest = &after[name.len()..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// KUDO's CLI call rewritten to `maestro operator`: the arguments after `kudo`, or `None`
/// when the words are not a KUDO CLI call.
pub fn kudo_arguments(words: &[String]) -> Option<Vec<String>> {
    let first = words.first()?;
    let program = Path::new(first).file_name().and_then(|n| n.to_str()).unwrap_or_default();
    match program {
        "kubectl-kudo" => Some(words[1..].to_vec()),
        "kubectl" if words.get(1).map(String::as_str) == Some("kudo") => Some(words[2..].to_vec()),
        _ => None,
    }
}

/// A program and its arguments, and the original line when KUDO compatibility rewrote it.
type Program = (Vec<String>, Option<String>);

/// What a `command` runs; `Ok(None)` for a KUDO call with nothing to do (`init`).
fn program(command: &Command, environment: &Environment) -> Result<Option<Program>, String> {
    let line = expand(&command.command, environment);
    let mut words = shlex::split(&line).ok_or_else(|| format!("cannot split {line:?} into words"))?;
    if words.is_empty() {
        return Err("an empty command".into());
    }
    if command.namespaced {
        words.extend(["--namespace".to_string(), environment.namespace.clone()]);
    }
    let Some(maestro) = &environment.kudo_compat else { return Ok(Some((words, None))) };
    let Some(arguments) = kudo_arguments(&words) else { return Ok(Some((words, None))) };
    if arguments.first().map(String::as_str) == Some("init") {
        return Ok(None);
    }
    let mut rewritten = vec![maestro.display().to_string(), "operator".to_string()];
    rewritten.extend(arguments);
    Ok(Some((rewritten, Some(line))))
}

/// A command ready to start.
struct Prepared {
    process: tokio::process::Command,
    /// The line it runs, for the report.
    line: String,
    rewritten_from: Option<String>,
}

/// The process a command starts, with its environment; `Ok(None)` for a KUDO call with nothing
/// to do.
fn process(command: &Command, environment: &Environment) -> Result<Option<Prepared>, String> {
    let (mut process, line, rewritten_from) = if command.script.is_empty() {
        let Some((words, rewritten_from)) = program(command, environment)? else { return Ok(None) };
        let mut process = tokio::process::Command::new(&words[0]);
        process.args(&words[1..]);
        (process, words.join(" "), rewritten_from)
    } else {
        let mut process = tokio::process::Command::new("sh");
        process.arg("-c").arg(&command.script);
        (process, command.script.clone(), None)
    };
    process
        .current_dir(&environment.dir)
        .env("NAMESPACE", &environment.namespace)
        .env("KUBECONFIG", &environment.kubeconfig)
        .envs(environment.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    Ok(Some(Prepared { process, line, rewritten_from }))
}

/// Runs one command to its end (or its time limit).
pub async fn run(command: &Command, environment: &Environment) -> Ran {
    let timeout = command.timeout.map(Duration::from_secs).unwrap_or(environment.timeout);
    let Prepared { mut process, line, rewritten_from } = match process(command, environment) {
        Ok(Some(prepared)) => prepared,
        Ok(None) => {
            let line = expand(&command.command, environment);
            return Ran {
                line: line.clone(),
                success: true,
                detail: "skipped: the universal operator is already running (KUDO compatibility)".into(),
                output: String::new(),
                rewritten_from: Some(line),
            };
        }
        Err(why) => return failed(&command.command, why),
    };
    let child = match process.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(e) => return failed(&line, format!("cannot start: {e}")),
    };
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            let detail = match output.status.code() {
                Some(code) => format!("exit status {code}"),
                None => "killed by a signal".to_string(),
            };
            Ran { line, success: output.status.success(), detail, output: text, rewritten_from }
        }
        Ok(Err(e)) => failed(&line, format!("waiting for it: {e}")),
        Err(_) => failed(&line, format!("did not finish within {timeout:?}")),
    }
}

fn failed(line: &str, detail: String) -> Ran {
    Ran { line: line.to_string(), success: false, detail, output: String::new(), rewritten_from: None }
}

/// A background command of a suite: started, and killed when the returned child is dropped.
pub fn start_background(command: &Command, environment: &Environment) -> Result<tokio::process::Child, String> {
    let Some(mut prepared) = process(command, environment)? else {
        return Err("nothing to run in the background".into());
    };
    prepared
        .process
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", command.command))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(compat: bool) -> Environment {
        Environment {
            namespace: "kuttl-test-a".into(),
            kubeconfig: "/tmp/kc".into(),
            dir: std::env::temp_dir(),
            kudo_compat: compat.then(|| PathBuf::from("/bin/maestro")),
            timeout: Duration::from_secs(10),
            env: Vec::new(),
        }
    }

    #[test]
    fn variables_expand_and_a_double_dollar_is_a_dollar() {
        let text = expand("kubectl -n $NAMESPACE --kubeconfig=$KUBECONFIG echo $$HOME $OTHER", &environment(false));
        assert_eq!(text, "kubectl -n kuttl-test-a --kubeconfig=/tmp/kc echo $HOME $OTHER");
    }

    #[test]
    fn kudo_calls_become_maestro_operator_calls() {
        let rewrite = |line: &str| {
            let command = Command { command: line.into(), ..Command::default() };
            program(&command, &environment(true)).unwrap()
        };
        let (words, from) =
            rewrite("./bin/kubectl-kudo install --skip-instance ./repository/zookeeper/operator/").unwrap();
        assert_eq!(
            words,
            ["/bin/maestro", "operator", "install", "--skip-instance", "./repository/zookeeper/operator/"]
        );
        assert!(from.is_some());
        let (words, _) = rewrite("kubectl kudo plan status --instance zk").unwrap();
        assert_eq!(words[..4], ["/bin/maestro", "operator", "plan", "status"]);
        assert_eq!(rewrite("kubectl-kudo init --wait"), None, "init has nothing to do");
        let (words, from) = rewrite("kubectl get pods").unwrap();
        assert_eq!((words[0].as_str(), from), ("kubectl", None));
        let plain = Command { command: "kubectl kudo version".into(), ..Command::default() };
        let (words, _) = program(&plain, &environment(false)).unwrap().unwrap();
        assert_eq!(words[0], "kubectl", "no rewriting unless asked");
    }

    #[tokio::test]
    async fn commands_run_in_their_folder_with_the_namespace_and_report_failures() {
        let env = environment(false);
        let ok = run(&Command { script: "echo \"$NAMESPACE\"".into(), ..Command::default() }, &env).await;
        assert!(ok.success && ok.output.trim() == "kuttl-test-a", "{ok:?}");
        let namespaced = Command { command: "echo get".into(), namespaced: true, ..Command::default() };
        assert_eq!(run(&namespaced, &env).await.output.trim(), "get --namespace kuttl-test-a");
        let failing = run(&Command { script: "echo boom >&2; exit 3".into(), ..Command::default() }, &env).await;
        assert!(!failing.success && failing.detail == "exit status 3" && failing.output.contains("boom"));
        let slow = Command { script: "sleep 5".into(), timeout: Some(1), ..Command::default() };
        assert!(run(&slow, &env).await.detail.contains("did not finish within 1s"));
        let missing = run(&Command { command: "no-such-program-here".into(), ..Command::default() }, &env).await;
        assert!(missing.detail.starts_with("cannot start"), "{missing:?}");
    }
}
