//! `pods/exec`. The simulator runs no containers, so by default exec into an existing pod is
//! refused with that reason, which is what a client must then report. A test of a client's
//! exec path (the operator's Pipe task) can script what commands print through
//! [`SimOptions::exec`](crate::SimOptions): the request is then checked as a real server checks
//! it (the pod runs, the container is the pod's, a command is given), upgraded to a WebSocket
//! speaking the `v5.channel.k8s.io`/`v4.channel.k8s.io` protocol, and answered with the
//! scripted stdout, stderr and exit status.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::ws::{
    CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::ClusterState;
use crate::status::ApiError;
use crate::store::ObjKey;

/// What a scripted command prints and how it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecReply {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

/// Scripted exec answers, by command line. Empty (the default): no runtime, exec is refused.
#[derive(Debug, Clone, Default)]
pub struct ExecScript {
    replies: BTreeMap<Vec<String>, ExecReply>,
}

impl ExecScript {
    /// Answers `command` (the whole argument vector) with `reply` in every pod.
    pub fn on(mut self, command: &[&str], reply: ExecReply) -> ExecScript {
        self.replies.insert(command.iter().map(|s| (*s).to_owned()).collect(), reply);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }

    /// An unscripted command fails as a missing executable does (exit 127).
    fn reply(&self, command: &[String]) -> ExecReply {
        self.replies.get(command).cloned().unwrap_or_else(|| ExecReply {
            stdout: Vec::new(),
            stderr: format!("{}: command not scripted in this simulated cluster\n", command.join(" ")).into_bytes(),
            exit_code: 127,
        })
    }
}

/// Frames are at most this large, as the kubelet's stream buffers are.
const FRAME: usize = 32 * 1024;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;

/// The refusal of a streaming subresource where no container runtime runs.
pub(super) fn no_runtime(subresource: &str, namespace: &str, name: &str) -> ApiError {
    ApiError::bad_request(format!(
        "pods/{subresource} needs a container runtime and this simulated cluster runs no containers (pod {namespace}/{name})"
    ))
}

pub(super) async fn exec(
    State(sim): State<Arc<ClusterState>>,
    Path((namespace, name)): Path<(String, String)>,
    uri: Uri,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let reply = match reply(&sim, &namespace, &name, &uri) {
        Ok(reply) => reply,
        Err(refused) => return refused.into_response(),
    };
    match upgrade {
        Ok(upgrade) => upgrade
            .protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"])
            .on_upgrade(move |socket| answer(socket, reply))
            .into_response(),
        Err(_) => ApiError::bad_request("pods/exec needs a WebSocket upgrade (v5.channel.k8s.io or v4.channel.k8s.io)")
            .into_response(),
    }
}

/// The scripted reply to a well-formed exec request, or the server's refusal.
fn reply(sim: &ClusterState, namespace: &str, name: &str, uri: &Uri) -> Result<ExecReply, ApiError> {
    let key = ObjKey { rid: "/pods".into(), namespace: namespace.to_owned(), name: name.to_owned() };
    let pod =
        sim.store.get(&key).ok_or_else(|| ApiError::new(404, "NotFound", format!("pods \"{name}\" not found")))?;
    if sim.options.exec.is_empty() {
        return Err(no_runtime("exec", namespace, name));
    }
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending");
    if phase != "Running" {
        return Err(ApiError::bad_request(format!("pod {namespace}/{name} is not running (phase {phase})")));
    }
    let query: Vec<(String, String)> = serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
    let command: Vec<String> = query.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.clone()).collect();
    if command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let containers: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    let container = query.iter().find(|(k, _)| k == "container").map(|(_, v)| v.as_str());
    match (container, containers.as_slice()) {
        (None, [_]) => {}
        (None, _) => return Err(ApiError::bad_request(format!("a container name must be specified for pod {name}"))),
        (Some(c), all) if all.contains(&c) => {}
        (Some(c), _) => return Err(ApiError::bad_request(format!("container {c} is not valid for pod {name}"))),
    }
    Ok(sim.options.exec.reply(&command))
}

/// Scripted stdout and stderr on their channels, then the exit status, as the kubelet sends
/// them.
async fn answer(mut socket: WebSocket, reply: ExecReply) {
    for (channel, bytes) in [(STDOUT, &reply.stdout), (STDERR, &reply.stderr)] {
        for chunk in bytes.chunks(FRAME) {
            let mut frame = Vec::with_capacity(chunk.len() + 1);
            frame.push(channel);
            frame.extend_from_slice(chunk);
            if socket.send(Message::Binary(frame.into())).await.is_err() {
                return; // The client went away (e.g. it stopped reading an oversized file).
            }
        }
    }
    let mut frame = vec![STATUS];
    frame.extend_from_slice(status(reply.exit_code).to_string().as_bytes());
    let _ = socket.send(Message::Binary(frame.into())).await;
    // A normal closure: clients (kubectl) treat a close without a code as a broken stream.
    let _ = socket.send(Message::Close(Some(CloseFrame { code: close_code::NORMAL, reason: "".into() }))).await;
}

fn status(exit_code: i32) -> Value {
    if exit_code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: exit status {exit_code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": exit_code.to_string()}]},
    })
}
