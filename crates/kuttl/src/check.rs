//! One evaluation of a step's asserts and errors (SPEC.md §6.3, kuttl's `CheckResource` and
//! `CheckResourceAbsent`): a named object is read, an unnamed one is looked for among the
//! objects of its kind with its labels, at least one of which must match; an errors object
//! must match nothing. What fails is described by the fields that differ from the closest
//! object, not by two YAML dumps.
//!
//! Past kuttl: an assert on a KUDO Instance whose plan has ended in `FATAL_ERROR` while the
//! assert expects another status can never hold, so the step fails at once with the plan's
//! own message instead of running into its timeout.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cluster::{Cluster, ClusterError, ObjectRef, text};
use crate::subset::{Difference, differences};

/// Why an object does not satisfy its assert (or its errors entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmet {
    /// A named object does not exist.
    Missing(ObjectRef),
    /// An unnamed assert found no object of its kind and labels.
    NoneListed { kind: String, namespace: String, labels: BTreeMap<String, String> },
    /// The object (the closest one, for an unnamed assert) differs in these fields.
    Differs { object: ObjectRef, differences: Vec<Difference> },
    /// An errors entry matches this object.
    Present(ObjectRef),
}

impl std::fmt::Display for Unmet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unmet::Missing(object) => write!(f, "{object} not found"),
            Unmet::NoneListed { kind, namespace, labels } if labels.is_empty() => {
                write!(f, "no {kind} in {namespace}")
            }
            Unmet::NoneListed { kind, namespace, labels } => {
                write!(f, "no {kind} in {namespace} with labels {labels:?}")
            }
            Unmet::Differs { object, differences } => {
                write!(f, "{object} differs:")?;
                for difference in differences {
                    write!(f, "\n    {difference}")?;
                }
                Ok(())
            }
            Unmet::Present(object) => write!(f, "{object} exists and matches an errors entry"),
        }
    }
}

/// The result of one evaluation.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    pub unmet: Vec<Unmet>,
    /// Set when waiting longer cannot help (a KUDO plan ended in FATAL_ERROR).
    pub hopeless: Option<String>,
}

impl Evaluation {
    pub fn passed(&self) -> bool {
        self.unmet.is_empty() && self.hopeless.is_none()
    }
}

/// Evaluates `asserts` and `errors` once, in `namespace` for objects that name none.
pub async fn evaluate(
    cluster: &Cluster,
    namespace: &str,
    asserts: &[Value],
    errors: &[Value],
) -> Result<Evaluation, ClusterError> {
    let mut evaluation = Evaluation::default();
    for expected in asserts {
        if let Some(unmet) = assert_one(cluster, namespace, expected, &mut evaluation.hopeless).await? {
            evaluation.unmet.push(unmet);
        }
    }
    for refuted in errors {
        if let Some(unmet) = refute_one(cluster, namespace, refuted).await? {
            evaluation.unmet.push(unmet);
        }
    }
    Ok(evaluation)
}

fn labels(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

/// The objects an entry is about: the named one, or those of its kind with its labels.
async fn candidates(
    cluster: &Cluster,
    namespace: &str,
    expected: &Value,
) -> Result<(ObjectRef, Vec<Value>), ClusterError> {
    let (kind, reference) = cluster.locate(expected, namespace).await?;
    if reference.name.is_empty() {
        let listed = cluster.list(&kind, &reference.namespace, &labels(expected)).await?;
        return Ok((reference, listed));
    }
    Ok((reference.clone(), cluster.get(&kind, &reference).await?.into_iter().collect()))
}

async fn assert_one(
    cluster: &Cluster,
    namespace: &str,
    expected: &Value,
    hopeless: &mut Option<String>,
) -> Result<Option<Unmet>, ClusterError> {
    let (reference, found) = candidates(cluster, namespace, expected).await?;
    let mut closest: Option<(ObjectRef, Vec<Difference>)> = None;
    for actual in &found {
        let found_differences = differences(expected, actual);
        if found_differences.is_empty() {
            return Ok(None);
        }
        if hopeless.is_none() {
            *hopeless = failed_plan(expected, actual);
        }
        let object = ObjectRef { name: text(actual, "/metadata/name").to_string(), ..reference.clone() };
        if closest.as_ref().is_none_or(|(_, c)| found_differences.len() < c.len()) {
            closest = Some((object, found_differences));
        }
    }
    Ok(Some(match closest {
        Some((object, differences)) => Unmet::Differs { object, differences },
        None if reference.name.is_empty() => Unmet::NoneListed {
            kind: reference.kind.clone(),
            namespace: reference.namespace.clone(),
            labels: labels(expected),
        },
        None => Unmet::Missing(reference),
    }))
}

async fn refute_one(cluster: &Cluster, namespace: &str, refuted: &Value) -> Result<Option<Unmet>, ClusterError> {
    let (reference, found) = candidates(cluster, namespace, refuted).await?;
    let matching = found.iter().find(|actual| differences(refuted, actual).is_empty());
    Ok(matching.map(|actual| Unmet::Present(ObjectRef { name: text(actual, "/metadata/name").into(), ..reference })))
}

/// A KUDO Instance whose plan ended in FATAL_ERROR, where the assert expects another status
/// of that plan: the plan's message.
fn failed_plan(expected: &Value, actual: &Value) -> Option<String> {
    if !text(expected, "/apiVersion").starts_with("kudo.dev/") || text(expected, "/kind") != "Instance" {
        return None;
    }
    let plans = expected.pointer("/status/planStatus")?.as_object()?;
    for (plan, wanted) in plans {
        let wanted = wanted.get("status").and_then(Value::as_str);
        let status = actual.pointer(&format!("/status/planStatus/{plan}"));
        let state = status.and_then(|s| s.get("status")).and_then(Value::as_str);
        if state == Some("FATAL_ERROR") && wanted.is_some_and(|w| w != "FATAL_ERROR") {
            let message = status.map(fatal_message).unwrap_or_default();
            let name = text(actual, "/metadata/name");
            return Some(format!(
                "plan {plan} of Instance {name} ended in FATAL_ERROR, so it cannot reach {}: {message}",
                wanted.unwrap_or_default()
            ));
        }
    }
    None
}

/// The message of the step that failed, else the plan's.
fn fatal_message(plan: &Value) -> String {
    let steps = plan
        .get("phases")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|phase| phase.get("steps").and_then(Value::as_array).into_iter().flatten());
    let failed = steps
        .filter(|step| step.get("status").and_then(Value::as_str) == Some("FATAL_ERROR"))
        .find_map(|step| step.get("message").and_then(Value::as_str).filter(|m| !m.is_empty()));
    failed.or_else(|| plan.get("message").and_then(Value::as_str)).unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_fatal_plan_ends_the_wait_with_the_failed_steps_message() {
        let expected = json!({"apiVersion": "kudo.dev/v1beta1", "kind": "Instance", "metadata": {"name": "kafka"},
            "status": {"planStatus": {"deploy": {"status": "COMPLETE"}}}});
        let actual = json!({"apiVersion": "kudo.dev/v1beta1", "kind": "Instance", "metadata": {"name": "kafka"},
            "status": {"planStatus": {"deploy": {"status": "FATAL_ERROR", "phases": [{"steps": [
                {"name": "a", "status": "COMPLETE"},
                {"name": "tls", "status": "FATAL_ERROR", "message": "PipeTaskError: no exec"}]}]}}}});
        let message = failed_plan(&expected, &actual).unwrap();
        assert!(message.starts_with("plan deploy of Instance kafka ended in FATAL_ERROR"), "{message}");
        assert!(message.ends_with("PipeTaskError: no exec"), "{message}");
        let in_progress = json!({"apiVersion": "kudo.dev/v1beta1", "kind": "Instance",
            "status": {"planStatus": {"deploy": {"status": "IN_PROGRESS"}}}});
        assert_eq!(failed_plan(&expected, &in_progress), None, "still running: keep waiting");
        let wants_fatal = json!({"apiVersion": "kudo.dev/v1beta1", "kind": "Instance",
            "status": {"planStatus": {"deploy": {"status": "FATAL_ERROR"}}}});
        assert_eq!(failed_plan(&wants_fatal, &actual), None, "an assert may expect the failure");
    }
}
