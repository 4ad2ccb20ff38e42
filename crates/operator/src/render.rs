//! A step's templates rendered from what the cluster holds: the OperatorVersion (templates,
//! parameters with their defaults) and the Instance (name, namespace, parameter values), as
//! KUDO's engine renders them (SPEC.md §4), then decoded into objects. Every error here is
//! fatal for the plan (SPEC.md §2.6): running again would render the same text.

use std::collections::BTreeMap;

pub use maestro_gotmpl::Value as Dot;
use maestro_gotmpl::kudo;
use maestro_package::crd::{OperatorVersionSpec, Parameter};
use serde::Deserialize;
use serde_json::Value;

/// Who and where a render is for.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub instance: &'a str,
    pub namespace: &'a str,
    pub plan: &'a str,
    pub phase: &'a str,
    pub step: &'a str,
}

fn structured(parameter: &Parameter) -> bool {
    matches!(parameter.value_type.as_str(), "array" | "map")
}

/// The OperatorVersion's parameters as `params.yaml` would declare them: an `array`/`map`
/// default is YAML text in the CRD and a structure in the file.
fn params_file(parameters: &[Parameter]) -> Result<serde_yaml::Value, String> {
    let mut list = Vec::new();
    for parameter in parameters {
        let mut entry = serde_yaml::Mapping::new();
        entry.insert("name".into(), parameter.name.clone().into());
        entry.insert("type".into(), parameter.value_type.clone().into());
        if let Some(default) = &parameter.default {
            let value = if structured(parameter) {
                serde_yaml::from_str(default)
                    .map_err(|e| format!("parameter {:?}: its default is not YAML: {e}", parameter.name))?
            } else {
                serde_yaml::Value::String(default.clone())
            };
            entry.insert("default".into(), value);
        }
        list.push(serde_yaml::Value::Mapping(entry));
    }
    let mut file = serde_yaml::Mapping::new();
    file.insert("parameters".into(), serde_yaml::Value::Sequence(list));
    Ok(serde_yaml::Value::Mapping(file))
}

/// Checks parameter values strictly, as the CLI does before it writes them: every value
/// declared, then [`check_declared`].
pub fn check_parameters(parameters: &[Parameter], values: &BTreeMap<String, String>) -> Result<(), String> {
    if let Some(unknown) = values.keys().find(|name| !parameters.iter().any(|p| &&p.name == name)) {
        return Err(undeclared(unknown));
    }
    check_declared(parameters, values)
}

pub fn undeclared(name: &str) -> String {
    format!("parameter {name:?} is not declared by the operator version")
}

/// An undeclared parameter that `values` adds or changes against `previous`, which KUDO's
/// webhook refused on update. On create (no `previous`) KUDO accepted undeclared parameters
/// (its own e2e tests pass some), so none is refused then.
pub fn undeclared_change(
    parameters: &[Parameter],
    previous: Option<&BTreeMap<String, String>>,
    values: &BTreeMap<String, String>,
) -> Option<String> {
    let previous = previous?;
    values
        .iter()
        .filter(|(name, _)| !parameters.iter().any(|p| &&p.name == name))
        .find(|(name, value)| previous.get(*name) != Some(*value))
        .map(|(name, _)| undeclared(name))
}

/// Checks the declared parameters' values as KUDO's webhook did: every required parameter
/// without a default given, every enum and type respected.
pub fn check_declared(parameters: &[Parameter], values: &BTreeMap<String, String>) -> Result<(), String> {
    for parameter in parameters {
        let value = values.get(&parameter.name);
        if parameter.required == Some(true) && parameter.default.is_none() && value.is_none() {
            return Err(format!("parameter {:?} is required and has no default", parameter.name));
        }
        if let (Some(value), Some(allowed)) = (value, &parameter.r#enum)
            && !allowed.contains(value)
        {
            return Err(format!("parameter {:?}: {value:?} is not one of {}", parameter.name, allowed.join(", ")));
        }
        if let Some(value) = value {
            check_type(parameter, value)?;
        }
    }
    Ok(())
}

/// A value fits its parameter's declared type (KUDO's `ValidateParameterValueForType`).
fn check_type(parameter: &Parameter, value: &str) -> Result<(), String> {
    let fits = match parameter.value_type.as_str() {
        "integer" => value.trim().parse::<i64>().is_ok(),
        "number" => value.trim().parse::<f64>().is_ok(),
        "boolean" => matches!(
            value.trim(),
            "true" | "false" | "True" | "False" | "TRUE" | "FALSE" | "1" | "0" | "t" | "f" | "T" | "F"
        ),
        "array" => matches!(serde_yaml::from_str(value), Ok(serde_yaml::Value::Sequence(_))),
        "map" => matches!(serde_yaml::from_str(value), Ok(serde_yaml::Value::Mapping(_))),
        _ => true,
    };
    match fits {
        true => Ok(()),
        false => Err(format!("parameter {:?}: {value:?} is not of type {}", parameter.name, parameter.value_type)),
    }
}

/// Dot for one step's render: metadata, `.Params` (typed as KUDO types them) and `.Pipes`.
pub fn data(
    operator_version: &OperatorVersionSpec,
    scope: Scope<'_>,
    values: &BTreeMap<String, String>,
    pipes: BTreeMap<String, String>,
) -> Result<Dot, String> {
    check_declared(&operator_version.parameters, values)?;
    let params = kudo::params(&params_file(&operator_version.parameters)?, values)?;
    let meta = BTreeMap::from([
        ("Name".to_string(), scope.instance.to_string()),
        ("Namespace".to_string(), scope.namespace.to_string()),
        ("OperatorName".to_string(), operator_version.operator.name.clone()),
        ("OperatorVersion".to_string(), operator_version.version.clone()),
        ("AppVersion".to_string(), operator_version.app_version.clone()),
        ("PlanName".to_string(), scope.plan.to_string()),
        ("PhaseName".to_string(), scope.phase.to_string()),
        ("StepName".to_string(), scope.step.to_string()),
    ]);
    Ok(kudo::data(&meta, params, pipes))
}

/// KUDO's name for a pipe artifact (and pod): `<instance>.<plan>.<phase>.<step>.<task>.<key>`,
/// every part lower-cased with everything but letters and digits removed.
pub fn pipe_name(parts: [&str; 6]) -> String {
    let clean = |s: &str| s.to_lowercase().chars().filter(char::is_ascii_alphanumeric).collect::<String>();
    parts.map(clean).join(".")
}

/// `.Pipes`: key to artifact name for every Pipe task of `plan` (KUDO builds it from the
/// executing plan only).
pub fn pipes(operator_version: &OperatorVersionSpec, plan: &str, instance: &str) -> BTreeMap<String, String> {
    let mut pipes = BTreeMap::new();
    let Some(steps) = operator_version.plans.get(plan) else { return pipes };
    for phase in &steps.phases {
        for step in &phase.steps {
            for task in &step.tasks {
                let Some(found) = operator_version.tasks.iter().find(|t| &t.name == task && t.kind == "Pipe") else {
                    continue;
                };
                for pipe in &found.spec.pipe {
                    let name = pipe_name([instance, plan, &phase.name, &step.name, task, &pipe.key]);
                    pipes.insert(pipe.key.clone(), name);
                }
            }
        }
    }
    pipes
}

/// One template rendered to text, or KUDO's error text naming the template.
pub fn text(operator_version: &OperatorVersionSpec, template: &str, dot: &Dot) -> Result<String, String> {
    let source = operator_version
        .templates
        .get(template)
        .ok_or_else(|| format!("template {template:?} does not exist in the operator version"))?;
    maestro_gotmpl::render(template, source, dot).map_err(|e| format!("error rendering template: {}", e.kudo_text()))
}

/// The objects of a rendered template: every non-empty YAML document, each a mapping with
/// `apiVersion`, `kind` and `metadata.name`.
pub fn objects(template: &str, text: &str) -> Result<Vec<Value>, String> {
    let mut objects = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document)
            .map_err(|e| format!("template {template:?}, document {}: not valid YAML: {e}", index + 1))?;
        if value.is_null() {
            continue;
        }
        let named = value.pointer("/metadata/name").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
        let typed = ["apiVersion", "kind"].iter().all(|k| value.get(*k).and_then(Value::as_str).is_some());
        if !value.is_object() || !named || !typed {
            return Err(format!(
                "template {template:?}, document {}: an object needs apiVersion, kind and metadata.name",
                index + 1
            ));
        }
        objects.push(value);
    }
    Ok(objects)
}

/// Renders `templates` and decodes them, in order.
pub fn render_objects(
    operator_version: &OperatorVersionSpec,
    templates: &[String],
    dot: &Dot,
) -> Result<Vec<Value>, String> {
    let mut all = Vec::new();
    for template in templates {
        all.extend(objects(template, &text(operator_version, template, dot)?)?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version() -> OperatorVersionSpec {
        let parameter = |name: &str, kind: &str, default: Option<&str>| Parameter {
            name: name.into(),
            value_type: kind.into(),
            default: default.map(str::to_string),
            required: Some(true),
            ..Parameter::default()
        };
        OperatorVersionSpec {
            version: "0.1.0".into(),
            templates: BTreeMap::from([
                (
                    "cm.yaml".to_string(),
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Name }}-cm\ndata:\n  n: \"{{ .Params.N }}\"\n  first: \"{{ index .Params.LIST 0 }}\"\n  plan: {{ .PlanName }}\n---\n".to_string(),
                ),
                ("bad.yaml".to_string(), "{{ .Params.MISSING }}".to_string()),
                ("nameless.yaml".to_string(), "apiVersion: v1\nkind: ConfigMap\n".to_string()),
            ]),
            parameters: vec![parameter("N", "integer", Some("3")), parameter("LIST", "array", Some("- a\n- b\n"))],
            ..OperatorVersionSpec::default()
        }
    }

    fn scope() -> Scope<'static> {
        Scope { instance: "zk", namespace: "ns", plan: "deploy", phase: "p", step: "s" }
    }

    #[test]
    fn a_template_renders_with_defaults_values_and_structured_parameters() {
        let ov = version();
        let dot = data(&ov, scope(), &BTreeMap::from([("N".into(), "5".into())]), BTreeMap::new()).unwrap();
        let objects = render_objects(&ov, &["cm.yaml".into()], &dot).unwrap();
        assert_eq!(objects.len(), 1, "the empty document after --- is skipped");
        assert_eq!(objects[0]["metadata"]["name"], "zk-cm");
        assert_eq!(objects[0]["data"], serde_json::json!({"n": "5", "first": "a", "plan": "deploy"}));
    }

    #[test]
    fn undeclared_parameters_are_refused_only_when_an_update_adds_or_changes_them() {
        let declared = version().parameters;
        let values = BTreeMap::from([("X".to_string(), "1".to_string())]);
        assert_eq!(undeclared_change(&declared, None, &values), None, "accepted on create");
        assert_eq!(undeclared_change(&declared, Some(&values), &values), None, "unchanged");
        let changed = BTreeMap::from([("X".to_string(), "2".to_string())]);
        assert_eq!(undeclared_change(&declared, Some(&values), &changed), Some(undeclared("X")));
        assert_eq!(check_parameters(&declared, &values), Err(undeclared("X")), "the CLI stays strict");
    }

    #[test]
    fn bad_parameters_and_bad_templates_say_what_and_where() {
        let ov = version();
        let unknown = data(&ov, scope(), &BTreeMap::from([("X".into(), "1".into())]), BTreeMap::new());
        let dot = unknown.expect("an undeclared value is ignored, as KUDO ignored it");
        let maestro_gotmpl::Value::Map(root) = &dot else { panic!("the dot is a map") };
        let Some(maestro_gotmpl::Value::Map(params)) = root.get("Params") else { panic!("no .Params") };
        assert!(!params.contains_key("X"), "only declared parameters reach .Params");
        let dot = data(&ov, scope(), &BTreeMap::new(), BTreeMap::new()).unwrap();
        let missing = render_objects(&ov, &["bad.yaml".into()], &dot).unwrap_err();
        assert!(missing.starts_with("error rendering template: render: template: bad.yaml:1:"), "{missing}");
        assert!(missing.contains("MISSING"), "{missing}");
        let nameless = render_objects(&ov, &["nameless.yaml".into()], &dot).unwrap_err();
        assert!(nameless.contains("nameless.yaml") && nameless.contains("metadata.name"), "{nameless}");
        let absent = render_objects(&ov, &["nope.yaml".into()], &dot).unwrap_err();
        assert_eq!(absent, "template \"nope.yaml\" does not exist in the operator version");
    }

    #[test]
    fn pipe_artifacts_are_named_as_kudo_names_them() {
        assert_eq!(
            pipe_name(["My_Inst", "deploy", "gen-certs", "s", "T1", "private.key"]),
            "myinst.deploy.gencerts.s.t1.privatekey"
        );
    }

    #[test]
    fn required_parameters_and_enums_are_checked_like_kudos_webhook() {
        let mut parameters = version().parameters;
        parameters[0].default = None;
        assert!(check_parameters(&parameters, &BTreeMap::new()).unwrap_err().contains("\"N\" is required"));
        parameters[0].r#enum = Some(vec!["1".into(), "3".into()]);
        let wrong = check_parameters(&parameters, &BTreeMap::from([("N".into(), "2".into())])).unwrap_err();
        assert_eq!(wrong, "parameter \"N\": \"2\" is not one of 1, 3");
        parameters[0].r#enum = None;
        let text = check_parameters(&parameters, &BTreeMap::from([("N".into(), "three".into())])).unwrap_err();
        assert_eq!(text, "parameter \"N\": \"three\" is not of type integer");
        let list = BTreeMap::from([("N".into(), "3".into()), ("LIST".into(), "a: b".into())]);
        assert!(check_parameters(&parameters, &list).unwrap_err().contains("is not of type array"));
        let fine = BTreeMap::from([("N".into(), " 7".into()), ("LIST".into(), "[x, y]".into())]);
        assert_eq!(check_parameters(&parameters, &fine), Ok(()));
    }
}
