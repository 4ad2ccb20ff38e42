//! The HTTP surface: discovery, `/version`, `/healthz`, and the resource paths
//! `/api/v1/...` and `/apis/<group>/<version>/...` (namespaced and cluster-scoped, with the
//! `/status` subresource). Paths are parsed by hand, as the real server does, because which
//! segment is a namespace depends on the resource.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};

use super::ClusterState;
use super::discovery::Registry;
use super::status::ApiError;
use super::store::ObjKey;
pub(crate) use super::target::Target;

mod admit;
mod deletes;
pub(crate) mod exec;
mod read;
mod scale;
mod write;

use deletes::{delete, delete_collection};
use read::{get_one, list};
use scale::scale;
use write::{create, patch, replace};

/// The real server's default limit on request bodies.
const MAX_BODY: usize = 3 * 1024 * 1024;

pub(crate) fn router(state: Arc<ClusterState>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/healthz", get(ok))
        .route("/livez", get(ok))
        .route("/readyz", get(ok))
        .route("/api/v1/namespaces/{namespace}/pods/{name}/exec", any(exec::exec))
        .fallback(dispatch)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn ok() -> &'static str {
    "ok"
}

async fn version() -> Response {
    axum::Json(json!({
        "major": "1",
        "minor": "34",
        "gitVersion": "v1.34.0-maestro-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "none (maestro sim-cluster)",
        "compiler": "rustc",
        "platform": "linux/amd64",
    }))
    .into_response()
}

pub(super) fn respond(code: StatusCode, body: Value) -> Response {
    (code, axum::Json(body)).into_response()
}

async fn dispatch(
    State(sim): State<Arc<ClusterState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Request { method, uri, headers, body };
    route(sim, &request).unwrap_or_else(IntoResponse::into_response)
}

pub(super) struct Request {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Request {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn media_type(&self) -> &str {
        self.header(header::CONTENT_TYPE).split(';').next().unwrap_or("").trim()
    }

    fn query(&self) -> Result<HashMap<String, String>, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(self.uri.query().unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
        Ok(pairs.into_iter().collect())
    }

    /// A JSON or YAML body (YAML is a superset of JSON, so apply patches parse either way).
    fn body(&self) -> Result<Value, ApiError> {
        let media = self.media_type();
        if media.contains("protobuf") || media.contains("cbor") {
            // No protobuf or CBOR decoding here: say so plainly rather than fail to parse.
            return Err(ApiError::unsupported_media_type(media));
        }
        let parsed = if media.contains("yaml") {
            serde_yaml::from_slice::<Value>(&self.body).map_err(|e| e.to_string())
        } else {
            serde_json::from_slice::<Value>(&self.body).map_err(|e| e.to_string())
        };
        parsed.map_err(|e| ApiError::bad_request(format!("the body of the request could not be decoded: {e}")))
    }
}

fn route(sim: Arc<ClusterState>, req: &Request) -> Result<Response, ApiError> {
    let path = req.uri.path().to_owned();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let discovery = matches!(segs.as_slice(), ["api"] | ["apis"] | ["api", _] | ["apis", _] | ["apis", _, _]);
    if discovery && req.method != Method::GET {
        return Err(ApiError::method_not_allowed(req.method.as_str()));
    }
    let aggregated = req.header(header::ACCEPT).contains("as=APIGroupDiscoveryList");
    match segs.as_slice() {
        ["api"] if aggregated => Ok(aggregated_response(sim.registry().aggregated(true))),
        ["api"] => Ok(respond(StatusCode::OK, Registry::api_versions(&sim.addr.to_string()))),
        ["apis"] if aggregated => Ok(aggregated_response(sim.registry().aggregated(false))),
        ["apis"] => Ok(respond(StatusCode::OK, sim.registry().group_list())),
        ["api", "v1"] => {
            sim.registry().resource_list("", "v1").map(|l| respond(StatusCode::OK, l)).ok_or_else(ApiError::no_route)
        }
        ["apis", group] => {
            sim.registry().group(group).map(|g| respond(StatusCode::OK, g)).ok_or_else(ApiError::no_route)
        }
        ["apis", group, version] => sim
            .registry()
            .resource_list(group, version)
            .map(|l| respond(StatusCode::OK, l))
            .ok_or_else(ApiError::no_route),
        ["api", "v1", rest @ ..] => resource(sim, "", "v1", rest, req),
        ["apis", group, version, rest @ ..] => resource(sim, group, version, rest, req),
        _ => Err(ApiError::no_route()),
    }
}

fn aggregated_response(doc: Value) -> Response {
    let content_type = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], axum::Json(doc)).into_response()
}

fn target(sim: &ClusterState, group: &str, version: &str, rest: &[&str]) -> Result<Target, ApiError> {
    let namespace_subresource = group.is_empty() && rest.len() == 3 && matches!(rest[2], "status" | "finalize");
    let namespaced_path = rest.first() == Some(&"namespaces") && rest.len() >= 3 && !namespace_subresource;
    let (namespace, rest) = if namespaced_path { (Some(rest[1].to_owned()), &rest[2..]) } else { (None, rest) };
    let (plural, name, sub) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return Err(ApiError::no_route()),
    };
    let def = sim.registry().find(group, version, plural).cloned().ok_or_else(ApiError::no_route)?;
    if (namespace.is_some() && !def.namespaced) || (def.namespaced && namespace.is_none() && name.is_some()) {
        return Err(ApiError::no_route());
    }
    let (status, scale) = match sub {
        None => (false, false),
        Some("status") if def.status => (true, false),
        Some("scale") if def.scalable() => (false, true),
        Some(_) => return Err(ApiError::no_route()),
    };
    Ok(Target { def, version: version.to_owned(), namespace, name: name.map(str::to_owned), status, scale })
}

/// `pods/exec`, `pods/attach` and `pods/portforward` stream to a container runtime, which the
/// simulator does not have. The pod is still looked up, so a wrong name reads NotFound as on
/// a real server; an existing pod is refused with that reason rather than the 404 of an unknown
/// path, so clients (kubectl exec, a Pipe task) can tell the user why.
fn streaming(sim: &ClusterState, group: &str, rest: &[&str]) -> Option<ApiError> {
    let ["namespaces", namespace, "pods", name, sub @ ("exec" | "attach" | "portforward")] = rest else {
        return None;
    };
    if !group.is_empty() {
        return None;
    }
    let key = ObjKey { rid: "/pods".into(), namespace: (*namespace).to_owned(), name: (*name).to_owned() };
    if sim.store.get(&key).is_none() {
        return Some(ApiError::new(404, "NotFound", format!("pods \"{name}\" not found")));
    }
    Some(exec::no_runtime(sub, namespace, name))
}

fn resource(
    sim: Arc<ClusterState>,
    group: &str,
    version: &str,
    rest: &[&str],
    req: &Request,
) -> Result<Response, ApiError> {
    if let Some(refused) = streaming(&sim, group, rest) {
        return Err(refused);
    }
    let t = target(&sim, group, version, rest)?;
    let query = req.query()?;
    let name = t.name.clone();
    if let (true, Some(name)) = (t.scale, &name) {
        return scale(sim.as_ref(), &t, name, &query, req);
    }
    match (&req.method, name) {
        (&Method::GET, Some(name)) => get_one(&sim, &t, &name, &query, req),
        (&Method::GET, None) if query.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            super::watch::serve(sim.clone(), &t, &query, req.header(header::ACCEPT))
        }
        (&Method::GET, None) => list(&sim, &t, &query, req),
        (&Method::POST, None) if !t.status => create(&sim, &t, &query, req),
        (&Method::PUT, Some(name)) => replace(&sim, &t, &name, &query, req),
        (&Method::PATCH, Some(name)) => patch(&sim, &t, &name, &query, req),
        (&Method::DELETE, Some(name)) if !t.status => delete(&sim, &t, &name, &query, req),
        (&Method::DELETE, None) => delete_collection(&sim, &t, &query, req),
        (method, _) => Err(ApiError::method_not_allowed(method.as_str())),
    }
}
