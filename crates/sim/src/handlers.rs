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
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::ClusterState;
use super::apply::{self, ApplyRequest};
pub(crate) use super::delete::{Propagation, delete_object};
use super::discovery::{CRD_RID, Registry, ResourceDef};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Change, Entry, ObjKey, Outcome, meta, meta_mut, meta_str, resource_version};
use super::table;
pub(crate) use super::target::{Target, present};

/// The real server's default limit on request bodies.
const MAX_BODY: usize = 3 * 1024 * 1024;

pub(crate) fn router(state: Arc<ClusterState>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/healthz", get(ok))
        .route("/livez", get(ok))
        .route("/readyz", get(ok))
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

fn respond(code: StatusCode, body: Value) -> Response {
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

struct Request {
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

fn resource(
    sim: Arc<ClusterState>,
    group: &str,
    version: &str,
    rest: &[&str],
    req: &Request,
) -> Result<Response, ApiError> {
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

fn get_one(
    sim: &ClusterState,
    t: &Target,
    name: &str,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    let obj =
        present(&t.def, &t.version, sim.store.get(&t.key(name)).ok_or_else(|| ApiError::not_found(&t.def, name))?);
    if table::wanted(req.header(header::ACCEPT)) {
        let list_meta = json!({"resourceVersion": meta_str(&obj, "resourceVersion").unwrap_or("")});
        return Ok(respond(StatusCode::OK, table::render(&t.def, &[obj], list_meta, full_rows(query))));
    }
    Ok(respond(StatusCode::OK, obj))
}

fn full_rows(query: &HashMap<String, String>) -> bool {
    query.get("includeObject").is_some_and(|i| i == "Object")
}

fn selected(t: &Target, query: &HashMap<String, String>) -> Result<impl Fn(&Value) -> bool, ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
    let _ = t;
    Ok(move |obj: &Value| labels.matches(obj) && fields.matches(obj))
}

/// A continue token: where the previous page ended and the resourceVersion of the first page.
fn continue_token(rv: u64, namespace: &str, name: &str) -> String {
    hex::encode(json!({"rv": rv, "ns": namespace, "name": name}).to_string())
}

fn parse_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let bad = || ApiError::bad_request("continue key is not valid: the token was not issued by this server");
    let bytes = hex::decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let text = |f: &str| v.get(f).and_then(Value::as_str).map(str::to_owned).ok_or_else(bad);
    Ok((v.get("rv").and_then(Value::as_u64).ok_or_else(bad)?, text("ns")?, text("name")?))
}

fn list(sim: &ClusterState, t: &Target, query: &HashMap<String, String>, req: &Request) -> Result<Response, ApiError> {
    let matches = selected(t, query)?;
    let (items, current_rv) = sim.store.list(&t.def.rid(), t.namespace.as_deref());
    let mut items: Vec<Value> = items.into_iter().filter(|o| matches(o)).collect();
    let mut rv = current_rv;
    if let Some(token) = query.get("continue").filter(|c| !c.is_empty()) {
        let (first_rv, ns, name) = parse_continue(token)?;
        rv = first_rv;
        let after = |o: &Value| {
            (meta_str(o, "namespace").unwrap_or(""), meta_str(o, "name").unwrap_or("")) > (ns.as_str(), name.as_str())
        };
        items.retain(after);
    }
    let limit = match query.get("limit") {
        Some(l) => l.parse::<usize>().map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        None => 0,
    };
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if limit > 0 && items.len() > limit {
        let remaining = items.len() - limit;
        items.truncate(limit);
        let last = items.last().cloned().unwrap_or_default();
        metadata["continue"] = json!(continue_token(
            rv,
            meta_str(&last, "namespace").unwrap_or(""),
            meta_str(&last, "name").unwrap_or("")
        ));
        metadata["remainingItemCount"] = json!(remaining);
    }
    let items: Vec<Value> = items.into_iter().map(|o| present(&t.def, &t.version, o)).collect();
    if table::wanted(req.header(header::ACCEPT)) {
        return Ok(respond(StatusCode::OK, table::render(&t.def, &items, metadata, full_rows(query))));
    }
    Ok(respond(
        StatusCode::OK,
        json!({"kind": format!("{}List", t.def.kind), "apiVersion": t.api_version(), "metadata": metadata, "items": items}),
    ))
}

/// Checks `apiVersion` and `kind` of a body against the URL.
fn check_type(t: &Target, obj: &Value) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body of the request must be a JSON object"));
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() || api_version.is_empty() {
        return Err(ApiError::bad_request(format!("Object 'Kind' or 'apiVersion' is missing in '{obj}'")));
    }
    if kind != t.def.kind || !t.def.versions.iter().any(|v| t.def.api_version(v) == api_version) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) or kind ({kind}) does not match the expected {} {}",
            t.api_version(),
            t.def.kind
        )));
    }
    Ok(())
}

/// Puts the URL's namespace into the body, refusing a different one.
fn set_namespace(t: &Target, obj: &mut Value) -> Result<(), ApiError> {
    let meta = meta_mut(obj);
    match (&t.namespace, meta.get("namespace").and_then(Value::as_str)) {
        (Some(url), Some(body)) if !body.is_empty() && body != url => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        (Some(url), _) => {
            meta.insert("namespace".into(), json!(url));
            Ok(())
        }
        (None, _) => {
            meta.remove("namespace");
            Ok(())
        }
    }
}

/// Drops the metadata only the server sets, returning the resourceVersion the client sent
/// (a precondition on updates).
fn sanitize(obj: &mut Value) -> Option<String> {
    let meta = meta_mut(obj);
    for field in [
        "uid",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    ] {
        meta.remove(field);
    }
    meta.remove("resourceVersion").and_then(|v| v.as_str().map(str::to_owned)).filter(|v| !v.is_empty())
}

fn dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(dns_label)
}

fn validate_name(t: &Target, name: &str) -> Result<(), ApiError> {
    let (valid, rule) = match (t.def.group.as_str(), t.def.plural.as_str()) {
        ("", "namespaces" | "services") => (dns_label(name), "a lowercase RFC 1123 label"),
        ("rbac.authorization.k8s.io", _) => {
            (!name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%']), "a valid path segment name")
        }
        _ => (dns_subdomain(name), "a lowercase RFC 1123 subdomain"),
    };
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid_object(&t.def, name, format!("metadata.name: Invalid value: \"{name}\": must be {rule}")))
    }
}

/// The name of a new object: `metadata.name`, or `generateName` plus five random characters.
fn new_name(t: &Target, obj: &mut Value) -> Result<String, ApiError> {
    let meta = meta_mut(obj);
    let name = match (meta.get("name").and_then(Value::as_str), meta.get("generateName").and_then(Value::as_str)) {
        (Some(name), _) if !name.is_empty() => name.to_owned(),
        (_, Some(prefix)) if !prefix.is_empty() => {
            const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
            let random = uuid::Uuid::new_v4();
            let suffix: String =
                random.as_bytes()[..5].iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
            format!("{prefix}{suffix}")
        }
        _ => {
            return Err(ApiError::invalid_object(
                &t.def,
                "",
                "metadata.name: Required value: name or generateName is required",
            ));
        }
    };
    meta.insert("name".into(), json!(name));
    Ok(name)
}

/// The defaults the simulator fills in where controllers or clients (e.g. `kubectl rollout
/// status`) rely on them. Applied on every write of the main resource, like real defaulting.
fn defaults(def: &ResourceDef, obj: &mut Value) {
    let spec_missing =
        |obj: &Value, ptr: &str| obj.get("spec").is_some_and(Value::is_object) && obj.pointer(ptr).is_none();
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => {
            if obj.pointer("/spec/finalizers").is_none() {
                obj["spec"]["finalizers"] = json!(["kubernetes"]);
            }
            if obj.get("status").is_none() {
                obj["status"] = json!({"phase": "Active"});
            }
        }
        ("", "secrets") if obj.get("type").is_none() => obj["type"] = json!("Opaque"),
        ("", "services") if spec_missing(obj, "/spec/type") => obj["spec"]["type"] = json!("ClusterIP"),
        ("apps", "deployments") => {
            if spec_missing(obj, "/spec/replicas") {
                obj["spec"]["replicas"] = json!(1);
            }
            if spec_missing(obj, "/spec/strategy") {
                obj["spec"]["strategy"] =
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}});
            }
        }
        ("apps", "statefulsets") => {
            if spec_missing(obj, "/spec/replicas") {
                obj["spec"]["replicas"] = json!(1);
            }
            if spec_missing(obj, "/spec/updateStrategy") {
                obj["spec"]["updateStrategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
            }
            if spec_missing(obj, "/spec/podManagementPolicy") {
                obj["spec"]["podManagementPolicy"] = json!("OrderedReady");
            }
        }
        ("apps", "daemonsets") if spec_missing(obj, "/spec/updateStrategy") => {
            obj["spec"]["updateStrategy"] =
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}});
        }
        ("apps", "replicasets") if spec_missing(obj, "/spec/replicas") => obj["spec"]["replicas"] = json!(1),
        _ => {}
    }
}

/// New content may go into an existing namespace that is not being deleted.
fn check_namespace_accepts(sim: &ClusterState, t: &Target) -> Result<(), ApiError> {
    let Some(namespace) = &t.namespace else { return Ok(()) };
    let key = ObjKey { rid: "/namespaces".into(), namespace: String::new(), name: namespace.clone() };
    let ns = sim.store.get(&key).ok_or_else(|| ApiError::namespace_not_found(namespace))?;
    if meta_str(&ns, "deletionTimestamp").is_some() {
        return Err(ApiError::forbidden(format!(
            "unable to create new content in namespace {namespace} because it is being terminated"
        )));
    }
    Ok(())
}

fn check_crd(sim: &ClusterState, t: &Target, obj: &Value) -> Result<(), ApiError> {
    if t.def.rid() != CRD_RID {
        return Ok(());
    }
    let name = meta_str(obj, "name").unwrap_or("");
    let def = Registry::parse_crd(obj).map_err(|e| ApiError::invalid_object(&t.def, name, e))?;
    if sim.registry().by_rid(&def.rid()).is_some_and(|d| !d.custom) {
        return Err(ApiError::invalid_object(&t.def, name, format!("{} is a built-in resource", def.qualified())));
    }
    Ok(())
}

fn field_manager(query: &HashMap<String, String>, req: &Request) -> Result<String, ApiError> {
    let manager = match query.get("fieldManager") {
        Some(m) => m.clone(),
        None => {
            let agent = req.header(header::USER_AGENT).split('/').next().unwrap_or("").trim().to_owned();
            if agent.is_empty() { "unknown".into() } else { agent }
        }
    };
    if manager.len() > 128 {
        return Err(ApiError::invalid("fieldManager: Too long: may not be more than 128 bytes"));
    }
    Ok(manager)
}

fn dry_run(query: &HashMap<String, String>) -> bool {
    query.get("dryRun").is_some_and(|d| d == "All")
}

fn created_or_ok(outcome: &Outcome) -> StatusCode {
    if matches!(outcome, Outcome::Created(_)) { StatusCode::CREATED } else { StatusCode::OK }
}

/// After a CRD write, the registry follows: its resource is served (or updated) at once.
fn after_write(sim: &ClusterState, t: &Target, outcome: &Outcome, dry: bool) {
    if dry || t.def.rid() != CRD_RID {
        return;
    }
    if let Outcome::Created(obj) | Outcome::Updated(obj) = outcome
        && let Ok(def) = Registry::parse_crd(obj)
        && let Err(err) = sim.registry_mut().register(def)
    {
        tracing::warn!(error = %err, "CRD not registered");
    }
}

fn create(
    sim: &ClusterState,
    t: &Target,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    let mut obj = req.body()?;
    check_type(t, &obj)?;
    set_namespace(t, &mut obj)?;
    if sanitize(&mut obj).is_some() {
        return Err(ApiError::invalid(
            "metadata.resourceVersion: Invalid value: resourceVersion should not be set on objects to be created",
        ));
    }
    let name = new_name(t, &mut obj)?;
    validate_name(t, &name)?;
    if t.def.status
        && let Some(map) = obj.as_object_mut()
    {
        map.remove("status");
    }
    defaults(&t.def, &mut obj);
    check_namespace_accepts(sim, t)?;
    check_crd(sim, t, &obj)?;
    let manager = field_manager(query, req)?;
    let managers = apply::track_update(None, &[], &obj, &manager, &t.api_version(), t.scope());
    let def = t.def.clone();
    let dry = dry_run(query);
    let outcome = sim.store.write(&t.key(&name), dry, |cur| match cur {
        Some(_) => Err(ApiError::already_exists(&def, &name)),
        None => Ok(Change::Put(Entry { obj, managers })),
    })?;
    after_write(sim, t, &outcome, dry);
    Ok(respond(StatusCode::CREATED, present(&t.def, &t.version, outcome.object().clone())))
}

/// The new object a write proposes, fitted to the request's scope: the main resource keeps the
/// stored status when the type has a status subresource; the status subresource changes only
/// the status.
fn fit_scope(t: &Target, cur: &Value, mut proposed: Value) -> Value {
    let status = if t.status { proposed.get("status").cloned() } else { cur.get("status").cloned() };
    if t.status {
        proposed = cur.clone();
    } else if !t.def.status {
        return proposed;
    }
    if let Some(map) = proposed.as_object_mut() {
        match status {
            Some(s) => map.insert("status".into(), s),
            None => map.remove("status"),
        };
    }
    proposed
}

/// An update computed from the stored entry by `change`, with the resourceVersion
/// precondition, scope, validation and field tracking every update shares.
fn update_with(
    sim: &ClusterState,
    t: &Target,
    name: &str,
    query: &HashMap<String, String>,
    req: &Request,
    change: impl FnOnce(&Entry) -> Result<Value, ApiError>,
) -> Result<Outcome, ApiError> {
    let manager = field_manager(query, req)?;
    let dry = dry_run(query);
    let outcome = sim.store.write(&t.key(name), dry, |cur| {
        let cur = cur.ok_or_else(|| ApiError::not_found(&t.def, name))?;
        let mut proposed = change(cur)?;
        check_type(t, &proposed)?;
        if let Some(rv) = sanitize(&mut proposed)
            && rv != resource_version(&cur.obj).to_string()
        {
            return Err(ApiError::stale(&t.def, name));
        }
        let mut proposed = fit_scope(t, &cur.obj, proposed);
        if !t.status {
            defaults(&t.def, &mut proposed);
        }
        check_crd(sim, t, &proposed)?;
        let managers =
            apply::track_update(Some(&cur.obj), &cur.managers, &proposed, &manager, &t.api_version(), t.scope());
        Ok(Change::Put(Entry { obj: proposed, managers }))
    })?;
    after_write(sim, t, &outcome, dry);
    Ok(outcome)
}

fn replace(
    sim: &ClusterState,
    t: &Target,
    name: &str,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    let mut obj = req.body()?;
    check_type(t, &obj)?;
    let body_name = meta_str(&obj, "name").unwrap_or("");
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    set_namespace(t, &mut obj)?;
    let outcome = update_with(sim, t, name, query, req, |_| Ok(obj))?;
    Ok(respond(StatusCode::OK, present(&t.def, &t.version, outcome.object().clone())))
}

fn patch(
    sim: &ClusterState,
    t: &Target,
    name: &str,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    let media = req.media_type().to_owned();
    if media == "application/apply-patch+yaml" {
        return server_side_apply(sim, t, name, query, req);
    }
    let patch: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("the body of the request could not be decoded: {e}")))?;
    let version = t.version.clone();
    let def = t.def.clone();
    let outcome = update_with(sim, t, name, query, req, |cur| {
        let mut obj = present(&def, &version, cur.obj.clone());
        match media.as_str() {
            "application/merge-patch+json" => apply::merge_patch(&mut obj, &patch),
            "application/strategic-merge-patch+json" => apply::strategic_merge_patch(&mut obj, &patch),
            "application/json-patch+json" => {
                apply::json_patch(&mut obj, &patch).map_err(|e| ApiError::invalid_object(&def, name, e))?
            }
            other => return Err(ApiError::unsupported_media_type(other)),
        }
        Ok(obj)
    })?;
    Ok(respond(StatusCode::OK, present(&t.def, &t.version, outcome.object().clone())))
}

fn server_side_apply(
    sim: &ClusterState,
    t: &Target,
    name: &str,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    let manager = query.get("fieldManager").filter(|m| !m.is_empty()).ok_or_else(|| {
        ApiError::invalid(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        )
    })?;
    let force = query.get("force").is_some_and(|f| f == "true");
    let mut applied = req.body()?;
    check_type(t, &applied)?;
    let applied_name = meta_str(&applied, "name").unwrap_or("");
    if applied_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({applied_name}) does not match the name on the URL ({name})"
        )));
    }
    set_namespace(t, &mut applied)?;
    let expected_rv = sanitize(&mut applied);
    applied = scoped_config(t, applied);
    let exists = sim.store.exists(&t.key(name));
    if !exists {
        check_namespace_accepts(sim, t)?;
        check_crd(sim, t, &applied)?;
    }
    let request = ApplyRequest { manager, force, api_version: &t.api_version(), scope: t.scope() };
    let dry = dry_run(query);
    let outcome = sim.store.write(&t.key(name), dry, |cur| {
        if let (Some(rv), Some(cur)) = (&expected_rv, cur)
            && *rv != resource_version(&cur.obj).to_string()
        {
            return Err(ApiError::stale(&t.def, name));
        }
        if cur.is_none() && t.status {
            return Err(ApiError::not_found(&t.def, name));
        }
        let (mut obj, managers) = apply::apply(cur.map(|c| (&c.obj, c.managers.as_slice())), &applied, &request)?;
        if !t.status {
            defaults(&t.def, &mut obj);
        }
        if cur.is_some() {
            check_crd(sim, t, &obj)?;
        }
        Ok(Change::Put(Entry { obj, managers }))
    })?;
    after_write(sim, t, &outcome, dry);
    Ok(respond(created_or_ok(&outcome), present(&t.def, &t.version, outcome.object().clone())))
}

/// The part of an applied configuration the request may set (see [`fit_scope`]).
fn scoped_config(t: &Target, mut applied: Value) -> Value {
    let Some(map) = applied.as_object_mut() else { return applied };
    if t.status {
        let identity: Map<String, Value> = meta(&Value::Object(map.clone()))
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| matches!(k.as_str(), "name" | "namespace"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        map.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "status"));
        map.insert("metadata".into(), Value::Object(identity));
    } else if t.def.status {
        map.remove("status");
    }
    applied
}

/// The `autoscaling/v1` Scale of a workload.
fn scale_view(obj: &Value) -> Value {
    let metadata: Map<String, Value> = meta(obj)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    matches!(k.as_str(), "name" | "namespace" | "uid" | "resourceVersion" | "creationTimestamp")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let selector: Vec<String> = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|labels| labels.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector.join(","),
        },
    })
}

/// The `/scale` subresource: reads and writes `spec.replicas` through a Scale object.
fn scale(
    sim: &ClusterState,
    t: &Target,
    name: &str,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    if req.method == Method::GET {
        let obj = sim.store.get(&t.key(name)).ok_or_else(|| ApiError::not_found(&t.def, name))?;
        return Ok(respond(StatusCode::OK, scale_view(&obj)));
    }
    if req.method != Method::PUT && req.method != Method::PATCH {
        return Err(ApiError::method_not_allowed(req.method.as_str()));
    }
    let media = req.media_type().to_owned();
    let body: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("the body of the request could not be decoded: {e}")))?;
    let put = req.method == Method::PUT;
    let (def, version) = (t.def.clone(), t.version.clone());
    let outcome = update_with(sim, t, name, query, req, |cur| {
        let mut view = scale_view(&cur.obj);
        match (put, media.as_str()) {
            (true, _) => view = body,
            (false, "application/merge-patch+json") => apply::merge_patch(&mut view, &body),
            (false, "application/strategic-merge-patch+json") => apply::strategic_merge_patch(&mut view, &body),
            (false, "application/json-patch+json") => {
                apply::json_patch(&mut view, &body).map_err(|e| ApiError::invalid_object(&def, name, e))?
            }
            (false, other) => return Err(ApiError::unsupported_media_type(other)),
        }
        let replicas = view.pointer("/spec/replicas").and_then(Value::as_i64).filter(|r| *r >= 0).ok_or_else(|| {
            ApiError::invalid_object(&def, name, "spec.replicas: Invalid value: must be a non-negative integer")
        })?;
        let mut obj = present(&def, &version, cur.obj.clone());
        obj["spec"]["replicas"] = json!(replicas);
        if let Some(rv) = view.pointer("/metadata/resourceVersion").cloned() {
            meta_mut(&mut obj).insert("resourceVersion".into(), rv);
        }
        Ok(obj)
    })?;
    Ok(respond(StatusCode::OK, scale_view(outcome.object())))
}

/// DeleteOptions from the body and the query (the query wins, as in `kubectl delete`).
fn delete_options(query: &HashMap<String, String>, req: &Request) -> Result<(Propagation, Value), ApiError> {
    let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&req.body).map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let mut policy = body.get("propagationPolicy").and_then(Value::as_str).map(str::to_owned);
    if body.get("orphanDependents") == Some(&json!(true)) {
        policy = Some("Orphan".into());
    }
    if let Some(p) = query.get("propagationPolicy") {
        policy = Some(p.clone());
    }
    let propagation = match policy.as_deref() {
        None | Some("Background") => Propagation::Background,
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
    };
    Ok((propagation, body.get("preconditions").cloned().unwrap_or(Value::Null)))
}

fn delete(
    sim: &ClusterState,
    t: &Target,
    name: &str,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    let (propagation, preconditions) = delete_options(query, req)?;
    let outcome = delete_object(sim, &t.def, &t.key(name), propagation, &preconditions, dry_run(query))?;
    let obj = present(&t.def, &t.version, outcome.object().clone());
    Ok(match outcome {
        // Gone at once: built-in types answer with a Status (what `kube` reads as "deleted"),
        // custom resources with the deleted object, as the real server does.
        Outcome::Removed(_) if !t.def.custom => respond(StatusCode::OK, deleted_status(&t.def, &obj)),
        Outcome::Removed(_) => respond(StatusCode::OK, obj),
        _ if propagation == Propagation::Foreground => respond(StatusCode::ACCEPTED, obj),
        _ => respond(StatusCode::OK, obj),
    })
}

fn deleted_status(def: &ResourceDef, obj: &Value) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": meta_str(obj, "name").unwrap_or(""),
            "group": def.group,
            "kind": def.plural,
            "uid": meta_str(obj, "uid").unwrap_or(""),
        },
    })
}

fn delete_collection(
    sim: &ClusterState,
    t: &Target,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    let (propagation, _) = delete_options(query, req)?;
    let matches = selected(t, query)?;
    let (items, rv) = sim.store.list(&t.def.rid(), t.namespace.as_deref());
    let mut deleted = Vec::new();
    for obj in items.iter().filter(|o| matches(o)) {
        let key = ObjKey {
            rid: t.def.rid(),
            namespace: meta_str(obj, "namespace").unwrap_or("").to_owned(),
            name: meta_str(obj, "name").unwrap_or("").to_owned(),
        };
        match delete_object(sim, &t.def, &key, propagation, &Value::Null, dry_run(query)) {
            Ok(outcome) => deleted.push(present(&t.def, &t.version, outcome.object().clone())),
            Err(err) if err.code == 404 => {}
            Err(err) => return Err(err),
        }
    }
    Ok(respond(
        StatusCode::OK,
        json!({"kind": format!("{}List", t.def.kind), "apiVersion": t.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": deleted}),
    ))
}
