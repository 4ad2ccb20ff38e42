//! A `Pipe` task carried out (SPEC.md §3, KUDO's `task_pipe.go`): the pipe pod applied, waited
//! for until it runs (its init container has written the files), each file read out through
//! pods/exec in the `waiter` container, a Secret or ConfigMap made of it, the pod deleted.
//!
//! Unlike KUDO, a step that runs again after its artifacts were made (another task of the step
//! was still unfinished, or the engine restarted between the artifacts and the pod's deletion)
//! does not start a new pod: artifacts stamped with this plan execution's uid are current.
//! A server that refuses pods/exec (no container runtime, RBAC) ends the task with its reason;
//! an unreachable server or a 5xx is retried like any other call.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, AttachedProcess, DeleteParams};
use maestro_operator::enhance::{self, PLAN_UID_ANNOTATION};
use maestro_operator::health::{Health, health};
use maestro_operator::pipe::{self, MAX_FILE_SIZE, WAITER};
use maestro_package::types::PipeSpec;
use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::cluster::{CallError, Cluster, REQUEST_TIMEOUT, bounded};

/// How much of a failing command's stderr goes into the message.
const STDERR_LIMIT: u64 = 4096;

/// Where a Pipe task stands after one pass.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Every artifact exists for this plan execution and the pod is gone (or going).
    Done,
    /// The pipe pod does not run yet; the message says what it waits for.
    Waiting(String),
}

#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// Retrying cannot help: re-trigger the plan once the cause is mended.
    #[error("{0}")]
    Fatal(String),
    #[error(transparent)]
    Transient(CallError),
}

impl From<CallError> for PipeError {
    fn from(error: CallError) -> PipeError {
        PipeError::Transient(error)
    }
}

/// One Pipe task of one step of one Instance.
pub struct PipeRun<'a> {
    pub cluster: &'a Cluster,
    pub context: &'a enhance::Context,
    /// `<instance>.<plan>.<phase>.<step>.<task>.pipepod`.
    pub pod_name: String,
    /// Each pipe with the name of the artifact it makes.
    pub artifacts: Vec<(PipeSpec, String)>,
}

impl PipeRun<'_> {
    fn namespace(&self) -> &str {
        &self.context.namespace
    }

    /// One pass of the task for the pipe pod `pod` (checked and completed by
    /// [`pipe::pod`]).
    pub async fn run(&self, mut pod: Value) -> Result<Progress, PipeError> {
        if self.artifacts_current().await? {
            self.remove_pod().await?;
            return Ok(Progress::Done);
        }
        enhance::enhance(&mut pod, self.context, true);
        let live = self.apply(&pod).await?;
        if let Health::Waiting(why) = health(&live) {
            return Ok(Progress::Waiting(format!("pipe {why}")));
        }
        let mut made = Vec::with_capacity(self.artifacts.len());
        for (spec, name) in &self.artifacts {
            let content = self.copy(pipe::source(spec)).await?;
            let mut object = pipe::artifact(spec, name, &content).map_err(PipeError::Fatal)?;
            enhance::enhance(&mut object, self.context, true);
            made.push(object);
        }
        for object in &made {
            self.apply(object).await?;
        }
        self.remove_pod().await?;
        Ok(Progress::Done)
    }

    /// Whether every artifact exists and was made by this plan execution.
    async fn artifacts_current(&self) -> Result<bool, CallError> {
        for (spec, name) in &self.artifacts {
            let kind = self.cluster.kind("v1", &spec.kind).await?;
            let api = kind.api(&self.cluster.client, self.namespace());
            let Some(found) = bounded(api.get_opt(name)).await? else { return Ok(false) };
            if found.metadata.annotations.as_ref().and_then(|a| a.get(PLAN_UID_ANNOTATION))
                != Some(&self.context.plan_uid)
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn apply(&self, object: &Value) -> Result<Value, CallError> {
        let kind = self.cluster.kind_of(object).await?;
        self.cluster.apply(&kind, self.namespace(), object).await
    }

    async fn remove_pod(&self) -> Result<(), CallError> {
        let pods: Api<Pod> = Api::namespaced(self.cluster.client.clone(), self.namespace());
        match bounded(pods.delete(&self.pod_name, &DeleteParams::default())).await {
            Err(err) if !err.is_not_found() => Err(err),
            _ => Ok(()),
        }
    }

    /// `file` read out of the pod by `cat` in the waiter container, at most [`MAX_FILE_SIZE`].
    async fn copy(&self, file: &str) -> Result<Vec<u8>, PipeError> {
        let pods: Api<Pod> = Api::namespaced(self.cluster.client.clone(), self.namespace());
        let params = AttachParams::default().container(WAITER).stdin(false).stdout(true).stderr(true);
        let process = match bounded(pods.exec(&self.pod_name, ["cat", file], &params)).await {
            Ok(process) => process,
            // The server answered and refused: no runtime to exec in, or not allowed to.
            Err(CallError::Api { code: 400..=499, message, .. }) => {
                return Err(PipeError::Fatal(format!(
                    "the API server cannot exec into pipe pod {}/{} to copy {file}: {message}",
                    self.namespace(),
                    self.pod_name
                )));
            }
            Err(err) => return Err(err.into()),
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, read_all(process)).await {
            Ok(Ok(Output { stdout, .. })) if stdout.len() > MAX_FILE_SIZE => {
                Err(PipeError::Fatal(format!("pipe file {file} is larger than the limit of {MAX_FILE_SIZE} bytes")))
            }
            Ok(Ok(Output { stdout, failure: None })) => Ok(stdout),
            Ok(Ok(Output { failure: Some(why), .. })) => Err(PipeError::Fatal(format!(
                "copying pipe file {file} out of pod {}/{} failed: {why}",
                self.namespace(),
                self.pod_name
            ))),
            Ok(Err(err)) => Err(PipeError::Transient(CallError::Unreachable(format!("pods/exec stream: {err}")))),
            Err(_) => Err(PipeError::Transient(CallError::Unreachable(format!(
                "pods/exec of {file} did not finish within {REQUEST_TIMEOUT:?}"
            )))),
        }
    }
}

/// What a remote command wrote and, when it failed, why.
struct Output {
    stdout: Vec<u8>,
    failure: Option<String>,
}

/// Reads stdout (one byte past the limit, to tell an oversized file) and stderr together, so
/// neither stream's buffer can stall the other, then the command's status.
async fn read_all(mut process: AttachedProcess) -> std::io::Result<Output> {
    let (stdout, stderr, status) = (process.stdout(), process.stderr(), process.take_status());
    let running = &process;
    let read_out = async {
        let mut buffer = Vec::new();
        if let Some(stdout) = stdout {
            stdout.take(MAX_FILE_SIZE as u64 + 1).read_to_end(&mut buffer).await?;
        }
        if buffer.len() > MAX_FILE_SIZE {
            // Stop the command: its stderr then ends too, instead of waiting on a full pipe.
            running.abort();
        }
        std::io::Result::Ok(buffer)
    };
    let read_err = async {
        let mut buffer = Vec::new();
        if let Some(stderr) = stderr {
            stderr.take(STDERR_LIMIT).read_to_end(&mut buffer).await?;
        }
        std::io::Result::Ok(buffer)
    };
    let (stdout, stderr) = tokio::try_join!(read_out, read_err)?;
    if stdout.len() > MAX_FILE_SIZE {
        return Ok(Output { stdout, failure: None });
    }
    let status = match status {
        Some(status) => tokio::time::timeout(Duration::from_secs(5), status).await.ok().flatten(),
        None => None,
    };
    let failure = match status {
        Some(status) if status.status.as_deref() == Some("Success") => None,
        Some(status) => Some(format!("{} {}", status.message.unwrap_or_default(), String::from_utf8_lossy(&stderr))),
        None => Some("the command's exit status never arrived".to_string()),
    };
    process.abort();
    Ok(Output { stdout, failure: failure.map(|f| f.trim().to_string()) })
}
