//! The resource types a simulated cluster serves: the built-in ones as data, and the custom
//! resources that CRDs register while the cluster runs. Renders discovery documents both in
//! the classic form (`/api`, `/apis`, `/apis/<group>/<version>`) and the aggregated form
//! (`Accept: ...;as=APIGroupDiscoveryList`) that `kubectl` and `Discovery::run_aggregated` ask for.

use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResourceDef {
    /// "" for the core group.
    pub group: String,
    /// Served versions, the storage (and preferred) version first.
    pub versions: Vec<String>,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// Categories such as `all` (what `kubectl get all` lists).
    pub categories: Vec<String>,
    /// Has the `/status` subresource: main-resource writes leave `status` alone.
    pub status: bool,
    /// Registered by a CustomResourceDefinition.
    pub custom: bool,
}

impl ResourceDef {
    /// The store key of this resource: `group/plural`.
    pub fn rid(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() { version.to_owned() } else { format!("{}/{version}", self.group) }
    }

    /// `deployments.apps`, or `pods` for the core group, as error messages name resources.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }

    /// Has the `/scale` subresource (an `autoscaling/v1` Scale over `spec.replicas`).
    pub fn scalable(&self) -> bool {
        self.group == "apps" && matches!(self.plural.as_str(), "deployments" | "statefulsets" | "replicasets")
    }

    fn scale_resource(&self) -> Value {
        json!({
            "name": format!("{}/scale", self.plural),
            "singularName": "",
            "namespaced": self.namespaced,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        })
    }

    fn verbs() -> Value {
        json!(["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"])
    }

    fn api_resource(&self) -> Value {
        let mut r = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ResourceDef::verbs(),
        });
        if !self.short_names.is_empty() {
            r["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            r["categories"] = json!(self.categories);
        }
        r
    }

    fn status_resource(&self) -> Value {
        json!({
            "name": format!("{}/status", self.plural),
            "singularName": "",
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["get", "patch", "update"],
        })
    }

    fn aggregated(&self, version: &str) -> Value {
        let mut r = json!({
            "resource": self.plural,
            "responseKind": {"group": self.group, "version": version, "kind": self.kind},
            "scope": if self.namespaced { "Namespaced" } else { "Cluster" },
            "singularResource": self.singular,
            "verbs": ResourceDef::verbs(),
        });
        if !self.short_names.is_empty() {
            r["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            r["categories"] = json!(self.categories);
        }
        let mut subresources = Vec::new();
        if self.status {
            subresources.push(json!({
                "subresource": "status",
                "responseKind": {"group": self.group, "version": version, "kind": self.kind},
                "verbs": ["get", "patch", "update"],
            }));
        }
        if self.scalable() {
            subresources.push(json!({
                "subresource": "scale",
                "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                "verbs": ["get", "patch", "update"],
            }));
        }
        if !subresources.is_empty() {
            r["subresources"] = Value::Array(subresources);
        }
        r
    }
}

/// (group, version, plural, singular, kind, namespaced, status subresource, short names)
type Builtin = (&'static str, &'static str, &'static str, &'static str, &'static str, bool, bool, &'static str);

const BUILTINS: &[Builtin] = &[
    ("", "v1", "namespaces", "namespace", "Namespace", false, true, "ns"),
    ("", "v1", "pods", "pod", "Pod", true, true, "po"),
    ("", "v1", "services", "service", "Service", true, true, "svc"),
    ("", "v1", "endpoints", "endpoints", "Endpoints", true, false, "ep"),
    ("", "v1", "configmaps", "configmap", "ConfigMap", true, false, "cm"),
    ("", "v1", "secrets", "secret", "Secret", true, false, ""),
    ("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, false, "sa"),
    ("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", true, true, "pvc"),
    ("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", false, true, "pv"),
    ("", "v1", "nodes", "node", "Node", false, true, "no"),
    ("", "v1", "events", "event", "Event", true, false, "ev"),
    ("", "v1", "limitranges", "limitrange", "LimitRange", true, false, "limits"),
    ("", "v1", "resourcequotas", "resourcequota", "ResourceQuota", true, true, "quota"),
    ("apps", "v1", "deployments", "deployment", "Deployment", true, true, "deploy"),
    ("apps", "v1", "statefulsets", "statefulset", "StatefulSet", true, true, "sts"),
    ("apps", "v1", "daemonsets", "daemonset", "DaemonSet", true, true, "ds"),
    ("apps", "v1", "replicasets", "replicaset", "ReplicaSet", true, true, "rs"),
    ("apps", "v1", "controllerrevisions", "controllerrevision", "ControllerRevision", true, false, ""),
    ("batch", "v1", "jobs", "job", "Job", true, true, ""),
    ("batch", "v1", "cronjobs", "cronjob", "CronJob", true, true, "cj"),
    ("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", true, false, ""),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", true, false, ""),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", false, false, ""),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        false,
        "",
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        true,
        "crd,crds",
    ),
    ("networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", true, true, "ing"),
    ("networking.k8s.io", "v1", "ingressclasses", "ingressclass", "IngressClass", false, false, ""),
    ("networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", true, false, "netpol"),
    ("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", true, true, "pdb"),
    ("storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", false, false, "sc"),
    ("coordination.k8s.io", "v1", "leases", "lease", "Lease", true, false, ""),
    (
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        true,
        "hpa",
    ),
    ("scheduling.k8s.io", "v1", "priorityclasses", "priorityclass", "PriorityClass", false, false, "pc"),
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "validatingwebhookconfiguration",
        "ValidatingWebhookConfiguration",
        false,
        false,
        "",
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        "MutatingWebhookConfiguration",
        false,
        false,
        "",
    ),
];

/// The built-in resources `kubectl get all` lists.
const IN_ALL: [&str; 9] = [
    "pods",
    "services",
    "deployments",
    "statefulsets",
    "daemonsets",
    "replicasets",
    "jobs",
    "cronjobs",
    "horizontalpodautoscalers",
];

/// The rid of CustomResourceDefinitions, whose writes change the registry.
pub(crate) const CRD_RID: &str = "apiextensions.k8s.io/customresourcedefinitions";

/// A CRD the registry refuses: it names a type that already exists or is malformed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct CrdError(pub String);

#[derive(Debug, Clone)]
pub(crate) struct Registry {
    defs: Vec<ResourceDef>,
}

impl Registry {
    pub fn builtin() -> Registry {
        let defs = BUILTINS
            .iter()
            .map(|&(group, version, plural, singular, kind, namespaced, status, short)| ResourceDef {
                group: group.into(),
                versions: vec![version.into()],
                plural: plural.into(),
                singular: singular.into(),
                kind: kind.into(),
                namespaced,
                short_names: short.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
                categories: if IN_ALL.contains(&plural) { vec!["all".into()] } else { Vec::new() },
                status,
                custom: false,
            })
            .collect();
        Registry { defs }
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceDef> {
        self.defs.iter().find(|d| d.group == group && d.plural == plural && d.versions.iter().any(|v| v == version))
    }

    pub fn by_rid(&self, rid: &str) -> Option<&ResourceDef> {
        self.defs.iter().find(|d| d.rid() == rid)
    }

    /// Checks a CRD object and turns it into the resource it defines.
    pub fn parse_crd(crd: &Value) -> Result<ResourceDef, CrdError> {
        let spec = crd.get("spec").ok_or_else(|| CrdError("spec: Required value".into()))?;
        let text = |ptr: &str| spec.pointer(ptr).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let group = text("/group").ok_or_else(|| CrdError("spec.group: Required value".into()))?;
        let plural = text("/names/plural").ok_or_else(|| CrdError("spec.names.plural: Required value".into()))?;
        let kind = text("/names/kind").ok_or_else(|| CrdError("spec.names.kind: Required value".into()))?;
        let name = super::object::meta_str(crd, "name").unwrap_or_default();
        if name != format!("{plural}.{group}") {
            return Err(CrdError(format!(
                "metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
            )));
        }
        let scope = text("/scope").unwrap_or_default();
        if scope != "Namespaced" && scope != "Cluster" {
            return Err(CrdError(format!(
                "spec.scope: Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""
            )));
        }
        let versions = spec.get("versions").and_then(Value::as_array).cloned().unwrap_or_default();
        let storage: Vec<&Value> = versions.iter().filter(|v| v.get("storage") == Some(&json!(true))).collect();
        if storage.len() != 1 {
            return Err(CrdError(
                "spec.versions: Invalid value: must have exactly one version marked as storage version".into(),
            ));
        }
        let version_name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_owned);
        let mut served: Vec<String> =
            versions.iter().filter(|v| v.get("served") == Some(&json!(true))).filter_map(version_name).collect();
        let storage_name = storage.first().and_then(|v| version_name(v)).unwrap_or_default();
        served.retain(|v| *v != storage_name);
        served.insert(0, storage_name);
        let status = versions.iter().any(|v| v.pointer("/subresources/status").is_some());
        let list = |ptr: &str| -> Vec<String> {
            spec.pointer(ptr)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        Ok(ResourceDef {
            singular: text("/names/singular").unwrap_or_else(|| kind.to_lowercase()),
            group,
            versions: served,
            plural,
            kind,
            namespaced: scope == "Namespaced",
            short_names: list("/names/shortNames"),
            categories: list("/names/categories"),
            status,
            custom: true,
        })
    }

    /// Adds or replaces the resource a CRD defines; refuses to shadow a built-in type.
    pub fn register(&mut self, def: ResourceDef) -> Result<(), CrdError> {
        if let Some(existing) = self.defs.iter().position(|d| d.group == def.group && d.plural == def.plural) {
            if !self.defs[existing].custom {
                return Err(CrdError(format!("{} is a built-in resource", def.qualified())));
            }
            self.defs[existing] = def;
        } else {
            self.defs.push(def);
        }
        Ok(())
    }

    pub fn unregister(&mut self, rid: &str) -> Option<ResourceDef> {
        let i = self.defs.iter().position(|d| d.custom && d.rid() == rid)?;
        Some(self.defs.remove(i))
    }

    /// Groups other than core, in first-seen order, each with its versions.
    fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for def in self.defs.iter().filter(|d| !d.group.is_empty()) {
            let i = match groups.iter().position(|(g, _)| *g == def.group) {
                Some(i) => i,
                None => {
                    groups.push((def.group.clone(), Vec::new()));
                    groups.len() - 1
                }
            };
            for v in &def.versions {
                if !groups[i].1.contains(v) {
                    groups[i].1.push(v.clone());
                }
            }
        }
        groups
    }

    fn group_json(name: &str, versions: &[String]) -> Value {
        let gv = |v: &String| json!({"groupVersion": format!("{name}/{v}"), "version": v});
        json!({
            "name": name,
            "versions": versions.iter().map(gv).collect::<Vec<_>>(),
            "preferredVersion": versions.first().map(gv).unwrap_or(Value::Null),
        })
    }

    /// `GET /api`.
    pub fn api_versions(addr: &str) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}],
        })
    }

    /// `GET /apis`.
    pub fn group_list(&self) -> Value {
        let groups: Vec<Value> = self.groups().iter().map(|(g, v)| Registry::group_json(g, v)).collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `GET /apis/<group>`.
    pub fn group(&self, group: &str) -> Option<Value> {
        let (name, versions) = self.groups().into_iter().find(|(g, _)| g == group)?;
        let mut doc = Registry::group_json(&name, &versions);
        doc["kind"] = json!("APIGroup");
        doc["apiVersion"] = json!("v1");
        Some(doc)
    }

    /// `GET /api/v1` or `GET /apis/<group>/<version>`.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let defs: Vec<&ResourceDef> =
            self.defs.iter().filter(|d| d.group == group && d.versions.iter().any(|v| v == version)).collect();
        if defs.is_empty() {
            return None;
        }
        let mut resources = Vec::new();
        for def in defs {
            resources.push(def.api_resource());
            if def.status {
                resources.push(def.status_resource());
            }
            if def.scalable() {
                resources.push(def.scale_resource());
            }
        }
        let group_version = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
        Some(
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
        )
    }

    /// The aggregated discovery document for the core group (`core`) or all other groups.
    pub fn aggregated(&self, core: bool) -> Value {
        let items: Vec<Value> = if core {
            vec![self.aggregated_group("", &["v1".to_owned()])]
        } else {
            self.groups().iter().map(|(g, v)| self.aggregated_group(g, v)).collect()
        };
        json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
    }

    fn aggregated_group(&self, group: &str, versions: &[String]) -> Value {
        let versions: Vec<Value> = versions
            .iter()
            .map(|v| {
                let resources: Vec<Value> = self
                    .defs
                    .iter()
                    .filter(|d| d.group == group && d.versions.contains(v))
                    .map(|d| d.aggregated(v))
                    .collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        json!({"metadata": {"name": group}, "versions": versions})
    }
}
