//! What every write checks and fills in before the store sees it: type, namespace, name,
//! server-set metadata, defaults, the namespace and CRD accepting it, field manager, dry run.

use std::collections::HashMap;

use axum::http::header;
use serde_json::{Value, json};

use crate::ClusterState;
use crate::discovery::{CRD_RID, Registry, ResourceDef};
use crate::status::ApiError;
use crate::store::{ObjKey, meta_mut, meta_str};
use crate::target::Target;

use super::Request;

/// Checks `apiVersion` and `kind` of a body against the URL.
pub(super) fn check_type(t: &Target, obj: &Value) -> Result<(), ApiError> {
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
pub(super) fn set_namespace(t: &Target, obj: &mut Value) -> Result<(), ApiError> {
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
pub(super) fn sanitize(obj: &mut Value) -> Option<String> {
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

pub(super) fn dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

pub(super) fn dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(dns_label)
}

pub(super) fn validate_name(t: &Target, name: &str) -> Result<(), ApiError> {
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
pub(super) fn new_name(t: &Target, obj: &mut Value) -> Result<String, ApiError> {
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
pub(super) fn defaults(def: &ResourceDef, obj: &mut Value) {
    crate::quantity::canonicalize(def, obj);
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
        ("", "services") => service_defaults(obj),
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

/// A Service's type (`ClusterIP`), port protocols (`TCP`) and cluster IP. The IP comes from
/// the Service's namespace and name, so every write of the same Service keeps it without the
/// allocator state a real API server has (and a headless `None` stays as it is).
fn service_defaults(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else { return };
    let kind = spec.entry("type").or_insert_with(|| json!("ClusterIP")).as_str().unwrap_or_default().to_owned();
    for port in spec.get_mut("ports").and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(port) = port.as_object_mut() {
            port.entry("protocol").or_insert_with(|| json!("TCP"));
        }
    }
    if kind == "ExternalName" {
        return;
    }
    let unset = spec.get("clusterIP").and_then(Value::as_str).is_none_or(str::is_empty);
    if unset {
        let meta = obj.get("metadata");
        let key = format!(
            "{}/{}",
            meta.and_then(|m| m.get("namespace")).and_then(Value::as_str).unwrap_or_default(),
            meta.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or_default()
        );
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        // 10.96.0.0/12, skipping .0 and the first address (the API server's own Service).
        let offset = 2 + (hash % ((1 << 20) - 3)) as u32;
        let ip = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 96, 0, 0)) + offset);
        obj["spec"]["clusterIP"] = json!(ip.to_string());
    }
    if let Some(ip) = obj.pointer("/spec/clusterIP").cloned() {
        obj["spec"]["clusterIPs"] = json!([ip]);
    }
}

/// New content may go into an existing namespace that is not being deleted.
pub(super) fn check_namespace_accepts(sim: &ClusterState, t: &Target) -> Result<(), ApiError> {
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

pub(super) fn check_crd(sim: &ClusterState, t: &Target, obj: &Value) -> Result<(), ApiError> {
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

pub(super) fn field_manager(query: &HashMap<String, String>, req: &Request) -> Result<String, ApiError> {
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

pub(super) fn dry_run(query: &HashMap<String, String>) -> bool {
    query.get("dryRun").is_some_and(|d| d == "All")
}
