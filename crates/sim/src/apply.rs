//! Field ownership and the patch formats: server-side apply with field managers and conflicts,
//! JSON merge patch, strategic merge patch (approximated) and JSON patch.
//!
//! The real server knows each type's schema (which lists are keyed by which fields). The
//! simulator has no schemas, so it guesses: a list whose items are all objects sharing a
//! distinct `name` (else `type`, `uid`, `mountPath`, `containerPort`, `port`, `ip`) is keyed by
//! that field, `metadata.finalizers` is a set, and every other list is atomic (owned and
//! replaced as a whole). The guess is right for containers, env, volumes, ports, conditions and
//! owner references, which is what appliers touch in practice.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::object::timestamp;
use super::status::ApiError;

/// One step of a field path, in the notation of `managedFields` (`f:`, `k:`, `v:`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum Seg {
    /// A field of an object.
    F(String),
    /// An item of a keyed list, by its key as compact JSON (`{"name":"nginx"}`).
    K(String),
    /// An item of a set, by its value as JSON.
    V(String),
}

pub(crate) type Path = Vec<Seg>;
pub(crate) type FieldSet = BTreeSet<Path>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Operation {
    Apply,
    Update,
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Manager {
    pub manager: String,
    pub operation: Operation,
    pub subresource: String,
    pub api_version: String,
    pub time: String,
    pub fields: FieldSet,
}

impl Manager {
    /// Same owner of the same fields: a rewrite that only refreshes `time` changes nothing.
    pub fn same_ownership(&self, other: &Manager) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && self.api_version == other.api_version
            && self.fields == other.fields
    }
}

/// Which part of an object a request may change: the main resource leaves `status` alone when
/// the type has a status subresource; the status subresource changes only `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Main { status_separate: bool },
    Status,
}

impl Scope {
    pub fn subresource(self) -> &'static str {
        match self {
            Scope::Main { .. } => "",
            Scope::Status => "status",
        }
    }

    fn covers_top(self, field: &str) -> bool {
        match (self, field) {
            (_, "apiVersion" | "kind") => false,
            (Scope::Status, f) => f == "status",
            (Scope::Main { status_separate }, "status") => !status_separate,
            (Scope::Main { .. }, _) => true,
        }
    }
}

/// The metadata fields a client may own; the rest are identity or set by the server.
const OWNED_METADATA: [&str; 4] = ["labels", "annotations", "finalizers", "ownerReferences"];
const KEY_CANDIDATES: [&str; 7] = ["name", "type", "uid", "mountPath", "containerPort", "port", "ip"];

fn list_key(items: &[Value]) -> Option<&'static str> {
    if items.is_empty() || !items.iter().all(Value::is_object) {
        return None;
    }
    KEY_CANDIDATES.into_iter().find(|key| {
        let mut seen = BTreeSet::new();
        items.iter().all(|item| item.get(*key).is_some_and(|v| !v.is_null() && seen.insert(v.to_string())))
    })
}

fn key_seg(item: &Value, key: &str) -> Seg {
    let mut map = Map::new();
    map.insert(key.to_owned(), item.get(key).cloned().unwrap_or(Value::Null));
    Seg::K(Value::Object(map).to_string())
}

fn is_set(path: &[Seg]) -> bool {
    matches!(path, [Seg::F(m), Seg::F(f)] if m == "metadata" && f == "finalizers")
}

/// The owned leaves of `obj` within `scope`, with their values: scalars, empty objects, atomic
/// lists, set items, and keyed list items themselves (so an item can be owned and removed).
pub(crate) fn leaves(obj: &Value, scope: Scope) -> BTreeMap<Path, Value> {
    let mut out = BTreeMap::new();
    let Some(map) = obj.as_object() else { return out };
    for (field, value) in map {
        if !scope.covers_top(field) {
            continue;
        }
        if field == "metadata" {
            let Some(meta) = value.as_object() else { continue };
            for owned in OWNED_METADATA {
                if let Some(v) = meta.get(owned) {
                    walk(v, vec![Seg::F("metadata".into()), Seg::F(owned.into())], &mut out);
                }
            }
        } else {
            walk(value, vec![Seg::F(field.clone())], &mut out);
        }
    }
    out
}

fn walk(value: &Value, path: Path, out: &mut BTreeMap<Path, Value>) {
    match value {
        Value::Null => {}
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let mut p = path.clone();
                p.push(Seg::F(k.clone()));
                walk(v, p, out);
            }
        }
        Value::Array(items) if is_set(&path) => {
            for item in items {
                let mut p = path.clone();
                p.push(Seg::V(item.to_string()));
                out.insert(p, item.clone());
            }
        }
        Value::Array(items) => match list_key(items) {
            Some(key) => {
                for item in items {
                    let mut p = path.clone();
                    p.push(key_seg(item, key));
                    out.insert(
                        p.clone(),
                        Value::Object(Map::from_iter([(key.to_owned(), item.get(key).cloned().unwrap_or_default())])),
                    );
                    if let Some(fields) = item.as_object() {
                        for (k, v) in fields {
                            let mut q = p.clone();
                            q.push(Seg::F(k.clone()));
                            walk(v, q, out);
                        }
                    }
                }
            }
            None => {
                out.insert(path, value.clone());
            }
        },
        _ => {
            out.insert(path, value.clone());
        }
    }
}

/// A path as the real server prints it in conflicts: `.spec.containers[name="app"].image`.
pub(crate) fn display_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::F(f) => {
                out.push('.');
                out.push_str(f);
            }
            Seg::K(k) => {
                let key: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                let inner: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!("[{}]", inner.join(",")));
            }
            Seg::V(v) => out.push_str(&format!("[={v}]")),
        }
    }
    out
}

fn seg_name(seg: &Seg) -> String {
    match seg {
        Seg::F(f) => format!("f:{f}"),
        Seg::K(k) => format!("k:{k}"),
        Seg::V(v) => format!("v:{v}"),
    }
}

/// A field set in the `FieldsV1` format of `managedFields`.
pub(crate) fn fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let has_children = set.range(path.clone()..).nth(1).is_some_and(|next| next.starts_with(path));
        let mut node = &mut root;
        for seg in path {
            let entry = node.entry(seg_name(seg)).or_insert_with(|| json!({}));
            node = match entry {
                Value::Object(m) => m,
                _ => unreachable!("field nodes are objects"),
            };
        }
        if has_children {
            node.insert(".".into(), json!({}));
        }
    }
    Value::Object(root)
}

/// `metadata.managedFields` for these managers, skipping those that own nothing.
pub(crate) fn render_managed_fields(managers: &[Manager]) -> Vec<Value> {
    managers
        .iter()
        .filter(|m| !m.fields.is_empty())
        .map(|m| {
            let mut entry = json!({
                "manager": m.manager,
                "operation": match m.operation { Operation::Apply => "Apply", Operation::Update => "Update" },
                "apiVersion": m.api_version,
                "time": m.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": fields_v1(&m.fields),
            });
            if !m.subresource.is_empty() {
                entry["subresource"] = json!(m.subresource);
            }
            entry
        })
        .collect()
}

/// Who wrote what, for an update (create, replace, merge/JSON patch): the writer takes the
/// fields whose values it changed from whoever owned them, and removed fields leave every set.
pub(crate) fn track_update(
    old_obj: Option<&Value>,
    old_managers: &[Manager],
    new_obj: &Value,
    manager: &str,
    api_version: &str,
    scope: Scope,
) -> Vec<Manager> {
    let before = old_obj.map(|o| leaves(o, scope)).unwrap_or_default();
    let after = leaves(new_obj, scope);
    let changed: FieldSet = after.iter().filter(|(p, v)| before.get(*p) != Some(*v)).map(|(p, _)| p.clone()).collect();
    let removed: FieldSet = before.keys().filter(|p| !after.contains_key(*p)).cloned().collect();
    let mut managers: Vec<Manager> = old_managers.to_vec();
    for m in &mut managers {
        m.fields.retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    if !changed.is_empty() {
        let subresource = scope.subresource();
        let position = managers
            .iter()
            .position(|m| m.manager == manager && m.operation == Operation::Update && m.subresource == subresource);
        let entry = match position {
            Some(i) => &mut managers[i],
            None => {
                managers.push(Manager {
                    manager: manager.to_owned(),
                    operation: Operation::Update,
                    subresource: subresource.to_owned(),
                    api_version: api_version.to_owned(),
                    time: String::new(),
                    fields: FieldSet::new(),
                });
                let last = managers.len() - 1;
                &mut managers[last]
            }
        };
        entry.fields.extend(changed);
        entry.time = timestamp();
        entry.api_version = api_version.to_owned();
    }
    managers.retain(|m| !m.fields.is_empty());
    managers
}

/// One server-side apply request.
pub(crate) struct ApplyRequest<'a> {
    pub manager: &'a str,
    pub force: bool,
    pub api_version: &'a str,
    pub scope: Scope,
}

/// Server-side apply of `applied` over the live object (or nothing). A field the configuration
/// sets to a different value than another manager owns is a conflict: refused (409, naming
/// the managers and fields) unless `force`, which takes the field over. Fields this manager
/// applied before and no longer applies are removed, unless another manager still owns them.
pub(crate) fn apply(
    live: Option<(&Value, &[Manager])>,
    applied: &Value,
    req: &ApplyRequest<'_>,
) -> Result<(Value, Vec<Manager>), ApiError> {
    let applied = without_nulls(applied);
    let applied_leaves = leaves(&applied, req.scope);
    let (live_obj, live_managers) = live.map_or((json!({}), Vec::new()), |(o, m)| (o.clone(), m.to_vec()));
    let live_leaves = leaves(&live_obj, req.scope);
    let is_me = |m: &Manager| m.manager == req.manager && m.operation == Operation::Apply;

    let mut conflicts: Vec<(String, String, Path)> = Vec::new();
    for m in live_managers.iter().filter(|m| !is_me(m)) {
        for path in m.fields.iter().filter(|p| applied_leaves.contains_key(*p)) {
            if live_leaves.get(path) != applied_leaves.get(path) {
                conflicts.push((m.manager.clone(), m.api_version.clone(), path.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !req.force {
        return Err(conflict_error(&conflicts));
    }
    let mut managers = live_managers;
    let taken: FieldSet = conflicts.into_iter().map(|(_, _, p)| p).collect();
    for m in managers.iter_mut().filter(|m| !is_me(m)) {
        m.fields.retain(|p| !taken.contains(p));
    }

    let previous: FieldSet = managers.iter().filter(|m| is_me(m)).flat_map(|m| m.fields.iter().cloned()).collect();
    let others: FieldSet = managers.iter().filter(|m| !is_me(m)).flat_map(|m| m.fields.iter().cloned()).collect();
    let mut obj = live_obj;
    let mut dropped: Vec<&Path> = previous
        .iter()
        .filter(|p| !applied_leaves.contains_key(*p) && !others.iter().any(|q| q.starts_with(p)))
        .collect();
    // Deepest first, so an item's fields go before the item.
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in dropped {
        remove_path(&mut obj, path);
    }
    merge_apply(&mut obj, &applied, &mut Vec::new());

    let mine = Manager {
        manager: req.manager.to_owned(),
        operation: Operation::Apply,
        subresource: req.scope.subresource().to_owned(),
        api_version: req.api_version.to_owned(),
        time: timestamp(),
        fields: applied_leaves.into_keys().collect(),
    };
    // In place, so a re-apply leaves managedFields in the same order (and so unchanged).
    match managers.iter().position(is_me) {
        Some(i) => managers[i] = mine,
        None => managers.push(mine),
    }
    managers.retain(|m| !m.fields.is_empty());
    Ok((obj, managers))
}

fn conflict_error(conflicts: &[(String, String, Path)]) -> ApiError {
    let lines: Vec<String> = conflicts
        .iter()
        .map(|(manager, api_version, path)| {
            format!("conflict with \"{manager}\" using {api_version}: {}", display_path(path))
        })
        .collect();
    let n = conflicts.len();
    let plural = if n == 1 { "conflict" } else { "conflicts" };
    let mut err = ApiError::new(409, "Conflict", format!("Apply failed with {n} {plural}: {}", lines.join("\n")));
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(manager, api_version, path)| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with \"{manager}\" using {api_version}"),
                "field": display_path(path),
            })
        })
        .collect();
    err.details = Some(json!({ "causes": causes }));
    err
}

fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Removes one owned field (or keyed item, or set item), then the objects it leaves empty.
fn remove_path(obj: &mut Value, path: &[Seg]) {
    let Some((last, parent_path)) = path.split_last() else { return };
    if let Some(parent) = get_mut(obj, parent_path) {
        match (last, parent) {
            (Seg::F(f), Value::Object(map)) => {
                map.remove(f);
            }
            (Seg::K(k), Value::Array(items)) => {
                let key: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                items.retain(|item| !key.iter().all(|(kf, kv)| item.get(kf) == Some(kv)));
            }
            (Seg::V(v), Value::Array(items)) => {
                let value: Option<Value> = serde_json::from_str(v).ok();
                items.retain(|item| Some(item) != value.as_ref());
            }
            _ => {}
        }
    }
    // Prune what became empty, but never a top-level section.
    for depth in (2..path.len()).rev() {
        let prefix = &path[..depth];
        let empty = get_mut(obj, prefix).is_some_and(|v| match v {
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        });
        if !empty {
            break;
        }
        remove_path_shallow(obj, prefix);
    }
}

fn remove_path_shallow(obj: &mut Value, path: &[Seg]) {
    let Some((Seg::F(f), parent_path)) = path.split_last() else { return };
    if let Some(Value::Object(map)) = get_mut(obj, parent_path) {
        map.remove(f);
    }
}

fn get_mut<'a>(obj: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut node = obj;
    for seg in path {
        node = match (seg, node) {
            (Seg::F(f), Value::Object(map)) => map.get_mut(f)?,
            (Seg::K(k), Value::Array(items)) => {
                let key: Map<String, Value> = serde_json::from_str(k).ok()?;
                items.iter_mut().find(|item| key.iter().all(|(kf, kv)| item.get(kf) == Some(kv)))?
            }
            _ => return None,
        };
    }
    Some(node)
}

/// Merges an applied configuration into the live object: objects field by field, keyed lists
/// item by item (applied items first, in applied order, then live items others own), sets as
/// a union, anything else replaced.
fn merge_apply(live: &mut Value, applied: &Value, path: &mut Path) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, av) in a {
                path.push(Seg::F(k.clone()));
                match l.get_mut(k) {
                    Some(lv) => merge_apply(lv, av, path),
                    None => {
                        l.insert(k.clone(), av.clone());
                    }
                }
                path.pop();
            }
        }
        (Value::Array(l), Value::Array(a)) if is_set(path) => {
            for item in a {
                if !l.contains(item) {
                    l.push(item.clone());
                }
            }
        }
        (Value::Array(l), Value::Array(a)) => {
            let Some(key) = list_key(a) else {
                *l = a.clone();
                return;
            };
            let mut merged = Vec::with_capacity(a.len() + l.len());
            let mut rest: Vec<Value> = std::mem::take(l);
            for item in a {
                let found = rest.iter().position(|li| li.get(key).is_some() && li.get(key) == item.get(key));
                match found {
                    Some(i) => {
                        let mut li = rest.remove(i);
                        merge_apply(&mut li, item, &mut Vec::new());
                        merged.push(li);
                    }
                    None => merged.push(item.clone()),
                }
            }
            merged.extend(rest);
            *l = merged;
        }
        (live, applied) => *live = applied.clone(),
    }
}

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(map) = target {
        for (k, v) in patch {
            if v.is_null() {
                map.remove(k);
            } else {
                merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Strategic merge patch, approximated: a JSON merge patch in which keyed lists (see the module
/// doc) merge item by item and honour `$patch: delete` on an item; other directives are dropped.
pub(crate) fn strategic_merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(map), Value::Object(patch)) => {
            for (k, v) in patch {
                if k.starts_with('$') {
                    continue;
                }
                if v.is_null() {
                    map.remove(k);
                } else if let Some(existing) = map.get_mut(k) {
                    strategic_merge_patch(existing, v);
                } else {
                    let mut fresh = Value::Null;
                    merge_patch(&mut fresh, &strip_directives(v));
                    map.insert(k.clone(), fresh);
                }
            }
        }
        (Value::Array(items), Value::Array(patch)) => match list_key(patch) {
            Some(key) => {
                for p in patch {
                    let found = items.iter().position(|i| i.get(key) == p.get(key));
                    let delete = p.get("$patch").and_then(Value::as_str) == Some("delete");
                    match (found, delete) {
                        (Some(i), true) => {
                            items.remove(i);
                        }
                        (Some(i), false) => strategic_merge_patch(&mut items[i], p),
                        (None, true) => {}
                        (None, false) => items.push(strip_directives(p)),
                    }
                }
            }
            None => *items = patch.clone(),
        },
        (target, patch) => *target = strip_directives(patch),
    }
}

fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(k, _)| !k.starts_with('$')).map(|(k, v)| (k.clone(), strip_directives(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// RFC 6902 JSON patch: add, remove, replace, move, copy, test.
pub(crate) fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops.as_array().ok_or("a JSON patch is an array of operations")?;
    for op in ops {
        let name = op.get("op").and_then(Value::as_str).ok_or("operation without \"op\"")?;
        let path = op.get("path").and_then(Value::as_str).ok_or("operation without \"path\"")?;
        let value = || op.get("value").cloned().ok_or_else(|| format!("{name} {path}: no \"value\""));
        let from = || op.get("from").and_then(Value::as_str).ok_or_else(|| format!("{name} {path}: no \"from\""));
        match name {
            "add" => pointer_add(target, path, value()?)?,
            "remove" => {
                pointer_remove(target, path)?;
            }
            "replace" => {
                pointer_remove(target, path)?;
                pointer_add(target, path, value()?)?;
            }
            "move" => {
                let moved = pointer_remove(target, from()?)?;
                pointer_add(target, path, moved)?;
            }
            "copy" => {
                let copied = target.pointer(from()?).cloned().ok_or_else(|| format!("copy: no value at {path}"))?;
                pointer_add(target, path, copied)?;
            }
            "test" => {
                if target.pointer(path) != Some(&value()?) {
                    return Err(format!("test failed at {path}"));
                }
            }
            other => return Err(format!("unknown JSON patch operation {other:?}")),
        }
    }
    Ok(())
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let i = path.rfind('/').ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    let last = path[i + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..i].to_owned(), last))
}

fn pointer_add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    match target.pointer_mut(&parent) {
        Some(Value::Object(map)) => {
            map.insert(last, value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let index =
                if last == "-" { items.len() } else { last.parse().map_err(|_| format!("bad index in {path}"))? };
            if index > items.len() {
                return Err(format!("index out of range in {path}"));
            }
            items.insert(index, value);
            Ok(())
        }
        _ => Err(format!("no object or list at {parent:?} to add {path:?} to")),
    }
}

fn pointer_remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let missing = || format!("no value at {path:?}");
    match target.pointer_mut(&parent) {
        Some(Value::Object(map)) => map.remove(&last).ok_or_else(missing),
        Some(Value::Array(items)) => {
            let index: usize = last.parse().map_err(|_| format!("bad index in {path}"))?;
            if index >= items.len() {
                return Err(missing());
            }
            Ok(items.remove(index))
        }
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(manager: &str, force: bool) -> ApplyRequest<'_> {
        ApplyRequest { manager, force, api_version: "v1", scope: Scope::Main { status_separate: true } }
    }

    #[test]
    fn containers_are_owned_item_by_item_in_fields_v1() {
        let obj = json!({"spec": {"containers": [{"name": "app", "image": "a:1"}]}});
        let set: FieldSet = leaves(&obj, Scope::Main { status_separate: true }).into_keys().collect();
        assert_eq!(
            fields_v1(&set),
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}}}})
        );
    }

    #[test]
    fn a_field_dropped_from_the_applied_config_is_removed_unless_another_manager_owns_it() {
        let first = json!({"data": {"a": "1", "b": "2"}});
        let (obj, managers) = apply(None, &first, &req("me", false)).unwrap_or_else(|e| panic!("{e}"));
        let (obj, managers) = apply(Some((&obj, &managers)), &json!({"data": {"a": "1"}}), &req("me", false))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(obj, json!({"data": {"a": "1"}}));
        let (obj, managers) = apply(Some((&obj, &managers)), &json!({"data": {"c": "3"}}), &req("other", false))
            .unwrap_or_else(|e| panic!("{e}"));
        let (obj, managers) = apply(Some((&obj, &managers)), &json!({"data": {"a": "1", "c": "3"}}), &req("me", false))
            .unwrap_or_else(|e| panic!("{e}"));
        let (obj, _) =
            apply(Some((&obj, &managers)), &json!({"data": {}}), &req("me", false)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(obj, json!({"data": {"c": "3"}}));
    }

    #[test]
    fn json_patch_adds_replaces_and_removes() {
        let mut v = json!({"a": [1, 2], "b": {"c": 1}});
        let ops = json!([
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "replace", "path": "/b/c", "value": 2},
            {"op": "remove", "path": "/a/0"},
            {"op": "test", "path": "/b/c", "value": 2}
        ]);
        json_patch(&mut v, &ops).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v, json!({"a": [2, 3], "b": {"c": 2}}));
        assert!(json_patch(&mut v, &json!([{"op": "test", "path": "/b/c", "value": 9}])).is_err());
    }

    #[test]
    fn strategic_merge_patch_merges_containers_by_name() {
        let mut v = json!({"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]});
        strategic_merge_patch(
            &mut v,
            &json!({"containers": [{"name": "b", "image": "2"}, {"name": "a", "$patch": "delete"}]}),
        );
        assert_eq!(v, json!({"containers": [{"name": "b", "image": "2"}]}));
    }
}
