//! The `KudoOperator` task's child Instance (SPEC.md §3, KEP-29): its name, operator version,
//! parameters (the task's rendered `parameterFile`) and owner, and the dependency cycle check.

use std::collections::BTreeMap;

use maestro_package::crd::API_VERSION;
use maestro_package::types::TaskSpec;
use serde_json::{Value, json};

use crate::enhance::OPERATOR_LABEL;

/// The Instance a `KudoOperator` task keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub name: String,
    pub operator: String,
    pub operator_version: String,
    pub parameters: BTreeMap<String, String>,
}

/// KUDO's OperatorVersion name: `<operator>-<appVersion>-<version>`, or without the app version.
pub fn operator_version_name(operator: &str, app_version: &str, version: &str) -> String {
    if app_version.is_empty() { format!("{operator}-{version}") } else { format!("{operator}-{app_version}-{version}") }
}

/// A rendered `parameterFile`: a YAML map of parameter to value; scalars become their text,
/// lists and maps their YAML.
pub fn parameters(template: &str, rendered: &str) -> Result<BTreeMap<String, String>, String> {
    let map: BTreeMap<String, serde_yaml::Value> = match serde_yaml::from_str::<Option<_>>(rendered) {
        Ok(map) => map.unwrap_or_default(),
        Err(e) => return Err(format!("parameter file {template:?} is not a YAML map: {e}")),
    };
    Ok(map
        .into_iter()
        .map(|(name, value)| {
            let text = match &value {
                serde_yaml::Value::Sequence(_) | serde_yaml::Value::Mapping(_) => {
                    serde_yaml::to_string(&value).unwrap_or_default()
                }
                scalar => maestro_gotmpl::kudo::scalar_text(scalar),
            };
            (name, text)
        })
        .collect())
}

/// The child a task asks for under `parent`.
pub fn child(parent: &str, task: &TaskSpec, parameters: BTreeMap<String, String>) -> Result<Child, String> {
    if task.package.is_empty() || task.operator_version.is_empty() {
        return Err("a KudoOperator task needs package and operatorVersion".into());
    }
    let name =
        if task.instance_name.is_empty() { format!("{parent}-{}", task.package) } else { task.instance_name.clone() };
    Ok(Child {
        name,
        operator: task.package.clone(),
        operator_version: operator_version_name(&task.package, &task.app_version, &task.operator_version),
        parameters,
    })
}

/// A cycle: the child's operator is the parent's or one of its ancestors' (`lineage`, the
/// parent first).
pub fn cycle(child: &Child, lineage: &[String]) -> Result<(), String> {
    match lineage.iter().position(|operator| operator == &child.operator) {
        None => Ok(()),
        Some(_) => {
            let mut chain: Vec<&str> = lineage.iter().rev().map(String::as_str).collect();
            chain.push(&child.operator);
            Err(format!("circular dependency: {}", chain.join(" -> ")))
        }
    }
}

/// The child Instance as applied: owned (not controlled) by the parent, as KUDO does.
pub fn object(child: &Child, namespace: &str, parent: &str, parent_uid: &str) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": "Instance",
        "metadata": {
            "name": child.name,
            "namespace": namespace,
            "labels": {OPERATOR_LABEL: child.operator},
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": "Instance", "name": parent, "uid": parent_uid, "blockOwnerDeletion": true}],
        },
        "spec": {
            "operatorVersion": {"name": child.operator_version},
            "parameters": child.parameters,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(instance_name: &str) -> TaskSpec {
        TaskSpec {
            package: "zookeeper".into(),
            operator_version: "0.3.0".into(),
            app_version: "3.4.14".into(),
            instance_name: instance_name.into(),
            ..TaskSpec::default()
        }
    }

    #[test]
    fn a_child_is_named_after_its_parent_and_package_unless_named() {
        let params = parameters("p.yaml", "NODE_COUNT: 3\nLIST: [a, b]\n").unwrap();
        let made = child("flink", &task(""), params).unwrap();
        assert_eq!((made.name.as_str(), made.operator_version.as_str()), ("flink-zookeeper", "zookeeper-3.4.14-0.3.0"));
        assert_eq!(made.parameters["NODE_COUNT"], "3");
        assert_eq!(made.parameters["LIST"], "- a\n- b\n");
        assert_eq!(child("flink", &task("zk"), BTreeMap::new()).unwrap().name, "zk");
        let object = object(&made, "ns", "flink", "u1");
        assert_eq!(object["metadata"]["ownerReferences"][0]["name"], "flink");
        assert!(object["metadata"]["ownerReferences"][0].get("controller").is_none(), "not a controller reference");
    }

    #[test]
    fn a_cycle_is_named_and_bad_parameter_files_are_refused() {
        let made = child("a", &task(""), BTreeMap::new()).unwrap();
        assert_eq!(cycle(&made, &["kafka".into()]), Ok(()));
        let err = cycle(&made, &["kafka".into(), "zookeeper".into()]).unwrap_err();
        assert_eq!(err, "circular dependency: zookeeper -> kafka -> zookeeper");
        assert!(parameters("p.yaml", "- a list").unwrap_err().contains("p.yaml"));
        assert!(parameters("p.yaml", "").unwrap().is_empty());
    }
}
