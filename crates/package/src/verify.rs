//! `package verify`: KUDO's checks (`pkg/kudoctl/packages/verifier`), in KUDO's words where
//! KUDO has them, plus the few a package repository needs (unknown task kinds, duplicate
//! names, YAML that renders to no Kubernetes object).
//!
//! Errors make a package unusable; warnings are what KUDO warns about (a parameter or task
//! defined but not used, a template no task references).

use std::collections::{BTreeMap, BTreeSet};

use maestro_gotmpl::Template;
use serde::Serialize;

use crate::Package;
use crate::render::{Meta, Outcome, render_one};
use crate::types::{IMPLICITS, Parameter, TASK_KINDS, Task};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    fn error(&mut self, message: String) {
        self.errors.push(message);
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }
}

/// Every check, in a stable order.
pub fn verify(package: &Package) -> Report {
    let mut report = Report::default();
    metadata(package, &mut report);
    plans(package, &mut report);
    tasks(package, &mut report);
    parameters(package, &mut report);
    let used = templates(package, &mut report);
    unused_parameters(package, &used, &mut report);
    rendering(package, &mut report);
    report
}

fn metadata(package: &Package, report: &mut Report) {
    let operator = &package.operator;
    if operator.name.is_empty() {
        report.error("operator.yaml: name is required".into());
    }
    if operator.operator_version.is_empty() {
        report.error("operator.yaml: operatorVersion is required".into());
    } else if semver::Version::parse(operator.operator_version.trim_start_matches('v')).is_err() {
        report
            .warn(format!("operator.yaml: operatorVersion {:?} is not a semantic version", operator.operator_version));
    }
}

fn plans(package: &Package, report: &mut Report) {
    let operator = &package.operator;
    duplicate_pipe_keys(package, report);
    if !operator.plans.contains_key("deploy") {
        report.error("an operator is required to have 'deploy' plan".into());
    }
    let tasks: BTreeSet<&str> = operator.tasks.iter().map(|t| t.name.as_str()).collect();
    for (name, plan) in &operator.plans {
        if plan.phases.is_empty() {
            report.error(format!("plan {name:?} has no phases"));
        }
        for phase in &plan.phases {
            for step in &phase.steps {
                for task in &step.tasks {
                    if !tasks.contains(task.as_str()) {
                        report.error(format!("task {task:?} in plan {name:?} is not defined"));
                    }
                }
            }
        }
    }
    for param in &package.params.parameters {
        if !param.trigger.is_empty() && !operator.plans.contains_key(&param.trigger) {
            report.error(format!("plan {:?} used in parameter {:?} is not defined", param.trigger, param.name));
        }
    }
}

/// Pipe keys name artifacts of a plan run: two pipes of one plan with one key would clash.
fn duplicate_pipe_keys(package: &Package, report: &mut Report) {
    let tasks: BTreeMap<&str, &Task> = package.operator.tasks.iter().map(|t| (t.name.as_str(), t)).collect();
    for (plan, spec) in &package.operator.plans {
        let mut keys = BTreeSet::new();
        let pipes = spec.phases.iter().flat_map(|ph| &ph.steps).flat_map(|s| &s.tasks);
        let pipes = pipes.filter_map(|name| tasks.get(name.as_str())).flat_map(|t| &t.spec.pipe);
        for pipe in pipes {
            if !keys.insert(pipe.key.as_str()) {
                report.error(format!("pipe key {:?} is used twice in plan {plan:?}", pipe.key));
            }
        }
    }
}

fn tasks(package: &Package, report: &mut Report) {
    let operator = &package.operator;
    let used: BTreeSet<&str> = operator
        .plans
        .values()
        .flat_map(|p| &p.phases)
        .flat_map(|ph| &ph.steps)
        .flat_map(|s| &s.tasks)
        .map(String::as_str)
        .collect();
    let mut seen = BTreeSet::new();
    for task in &operator.tasks {
        if task.name.is_empty() {
            report.error("a task without a name".into());
        } else if !seen.insert(task.name.as_str()) {
            report.error(format!("task {:?} is defined twice", task.name));
        }
        if !TASK_KINDS.contains(&task.kind.as_str()) {
            report.error(format!(
                "task {:?} has an unknown kind {:?}: one of {}",
                task.name,
                task.kind,
                TASK_KINDS.join(", ")
            ));
        }
        task_spec(package, task, report);
        if !used.contains(task.name.as_str()) {
            report.warn(format!("task {:?} defined but not used", task.name));
        }
    }
}

/// What each kind needs: templates that exist, a declared toggle parameter, a package name.
fn task_spec(package: &Package, task: &Task, report: &mut Report) {
    let spec = &task.spec;
    let mut required: Vec<&str> = Vec::new();
    match task.kind.as_str() {
        "Apply" | "Delete" | "Toggle" => {
            if spec.resources.is_empty() {
                report.error(format!("task {:?} ({}) has no resources", task.name, task.kind));
            }
            required.extend(spec.resources.iter().map(String::as_str));
        }
        "Pipe" => {
            if spec.pod.is_empty() || spec.pipe.is_empty() {
                report.error(format!("task {:?} (Pipe) needs a pod and at least one pipe", task.name));
            }
            required.push(&spec.pod);
            for pipe in &spec.pipe {
                let key_ok =
                    !pipe.key.is_empty() && pipe.key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !key_ok {
                    report
                        .error(format!("task {:?}: pipe key {:?} must match ^[a-zA-Z0-9_\\-]+$", task.name, pipe.key));
                }
                if !matches!(pipe.kind.as_str(), "Secret" | "ConfigMap") {
                    report
                        .error(format!("task {:?}: pipe kind {:?} must be Secret or ConfigMap", task.name, pipe.kind));
                }
            }
        }
        "KudoOperator" => {
            if spec.package.is_empty() {
                report.error(format!(
                    "task validation error: kudo operator task '{}' has an empty package name",
                    task.name
                ));
            }
            if !spec.parameter_file.is_empty() {
                required.push(&spec.parameter_file);
            }
        }
        _ => {}
    }
    if task.kind == "Toggle" && package.parameter(&spec.parameter).is_none() {
        report.error(format!("parameter {:?} in ToggleTask {} is not defined", spec.parameter, task.name));
    }
    for template in required.into_iter().filter(|t| !t.is_empty()) {
        if !package.templates.contains_key(template) {
            report.error(format!("template {template:?} required by {} but is not defined", task.name));
        }
    }
}

fn parameters(package: &Package, report: &mut Report) {
    let groups: BTreeSet<&str> = package.params.groups.iter().map(|g| g.name.as_str()).collect();
    let mut seen = BTreeSet::new();
    for group in &package.params.groups {
        if group.name.contains('/') {
            report.error(format!("group {:?} contains invalid character '/'", group.name));
        }
    }
    for param in &package.params.parameters {
        let name = &param.name;
        if name.is_empty() {
            report.error("params.yaml: a parameter without a name".into());
            continue;
        }
        if !seen.insert(name.as_str()) {
            report.error(format!("parameter {name:?} is defined twice"));
        }
        if param.is_immutable() && !param.is_required() && param.default.is_none() {
            report
                .error(format!("parameter {name:?} is immutable but is not marked as required or has a default value"));
        }
        if let Some(default) = &param.default
            && let Err(reason) = value_fits(param, default)
        {
            report.error(format!("parameter {name:?} has an invalid default value: {reason}"));
        }
        enum_values(param, report);
        if !param.group.is_empty() && !groups.contains(param.group.as_str()) && !package.params.groups.is_empty() {
            report.error(format!(
                "parameter {name:?} has a group {:?} that is not defined in the group section",
                param.group
            ));
        }
        if param.advanced.unwrap_or(false) && param.is_required() && param.default.is_none() {
            report.error(format!(
                "parameter {name:?} is marked as advanced, but also as required and has no default. \
                 An advanced parameter must either be optional or have a default value"
            ));
        }
        if param.group.contains('/') {
            report.error(format!("parameter {name:?} has a group with invalid character '/'"));
        }
        if !matches!(param.value_type(), "string" | "integer" | "number" | "boolean" | "array" | "map") {
            report.error(format!("parameter {name:?} has an unknown type {:?}", param.value_type));
        }
    }
}

fn enum_values(param: &Parameter, report: &mut Report) {
    let Some(values) = &param.r#enum else { return };
    if values.is_empty() {
        report.error(format!("parameter {:?} is an enum but has no allowed values", param.name));
    }
    for value in values {
        if let Err(reason) = value_fits(param, value) {
            report.error(format!("parameter {:?} has an invalid enum value: {reason}", param.name));
        }
    }
    if let Some(default) = &param.default
        && !values.contains(default)
    {
        report.error(format!("parameter {:?} has a default value that is not in its enum", param.name));
    }
}

/// Whether a YAML value is one of the parameter's type (KUDO parses it from its string form).
fn value_fits(param: &Parameter, value: &serde_yaml::Value) -> Result<(), String> {
    let text = maestro_gotmpl::kudo::scalar_text(value);
    let ok = match (param.value_type(), value) {
        ("array", serde_yaml::Value::Sequence(_)) | ("map", serde_yaml::Value::Mapping(_)) => true,
        ("array", serde_yaml::Value::String(s)) => serde_yaml::from_str::<Vec<serde_yaml::Value>>(s).is_ok(),
        ("map", serde_yaml::Value::String(s)) => serde_yaml::from_str::<serde_yaml::Mapping>(s).is_ok(),
        ("array" | "map", _) => false,
        ("integer", _) => text.parse::<i64>().is_ok(),
        ("number", _) => text.parse::<f64>().is_ok(),
        ("boolean", _) => matches!(
            text.as_str(),
            "1" | "t" | "T" | "TRUE" | "true" | "True" | "0" | "f" | "F" | "FALSE" | "false" | "False"
        ),
        _ => true,
    };
    if ok { Ok(()) } else { Err(format!("{text:?} is not a valid {}", param.value_type())) }
}

/// Parses every template; checks the fields it reads, its references and `kind: Namespace`.
/// Returns the parameters templates use.
fn templates(package: &Package, report: &mut Report) -> BTreeSet<String> {
    let referenced = referenced_templates(package);
    let mut used = BTreeSet::new();
    for (key, source) in &package.templates {
        if !referenced.contains(key.as_str()) && key != &package.operator.namespace_manifest {
            report.warn(format!("template {key:?} is not referenced from any task"));
        }
        let template = match Template::parse(key, source) {
            Ok(template) => template,
            Err(e) => {
                report.error(format!("template file {key:?} reports the following error: {e}"));
                continue;
            }
        };
        for chain in template.root_fields() {
            match chain.as_slice() {
                [root, name, ..] if root == "Params" => {
                    if package.parameter(name).is_none() {
                        report.error(format!("parameter {name:?} in template {key} is not defined"));
                    }
                    used.insert(name.clone());
                }
                [root, ..] if root == "Params" || root == "Pipes" => {}
                [implicit, ..] if !IMPLICITS.contains(&implicit.as_str()) => {
                    report.error(format!("template {key} defines an invalid implicit parameter {implicit:?}"));
                }
                _ => {}
            }
        }
    }
    for task in package.operator.tasks.iter().filter(|t| t.kind == "Toggle") {
        used.insert(task.spec.parameter.clone());
    }
    used
}

fn referenced_templates(package: &Package) -> BTreeSet<&str> {
    package.operator.tasks.iter().flat_map(Task::templates).collect()
}

fn unused_parameters(package: &Package, used: &BTreeSet<String>, report: &mut Report) {
    for param in &package.params.parameters {
        if !used.contains(&param.name) {
            report.warn(format!("parameter {:?} defined but not used.", param.name));
        }
    }
}

/// Every template renders with the defaults and placeholder metadata, and (except parameter
/// files of KudoOperator tasks) reads as Kubernetes objects; only the namespace manifest may
/// be a Namespace.
fn rendering(package: &Package, report: &mut Report) {
    let data = match package.data(&Meta::placeholders(), &BTreeMap::new(), pipe_placeholders(package)) {
        Ok(data) => data,
        Err(e) => return report.error(e),
    };
    let parameter_files: BTreeSet<&str> =
        package.operator.tasks.iter().map(|t| t.spec.parameter_file.as_str()).filter(|f| !f.is_empty()).collect();
    for (key, source) in &package.templates {
        let text = match render_one(key, source, &data) {
            Outcome::Rendered(text) => text,
            // A template that does not parse was reported above.
            Outcome::Error(e) if e.starts_with("parse:") => continue,
            Outcome::Error(e) => {
                report.error(e);
                continue;
            }
        };
        if parameter_files.contains(key.as_str()) {
            continue;
        }
        for kind in objects(key, &text, report) {
            if kind == "Namespace" && key != &package.operator.namespace_manifest {
                report.error(format!(
                    "template {key:?} contains 'kind: Namespace' not allowed unless specified as 'NamespaceManifest'"
                ));
            }
        }
    }
    if !package.operator.namespace_manifest.is_empty()
        && !package.templates.contains_key(&package.operator.namespace_manifest)
    {
        report.error(format!(
            "NamespaceManifest {:?} not found in /templates folder",
            package.operator.namespace_manifest
        ));
    }
}

/// The kinds of the objects a rendered template holds, split as KUDO splits (`\n---`);
/// documents that are empty or only comments are skipped.
fn objects(key: &str, text: &str, report: &mut Report) -> Vec<String> {
    let mut kinds = Vec::new();
    for document in text.split("\n---") {
        let meaningful = document.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        if !meaningful {
            continue;
        }
        match serde_yaml::from_str::<serde_yaml::Value>(document) {
            Ok(object) => match (object.get("apiVersion"), object.get("kind").and_then(serde_yaml::Value::as_str)) {
                (Some(_), Some(kind)) => kinds.push(kind.to_string()),
                _ => report
                    .error(format!("parsing rendered YAML from {key} failed: an object needs apiVersion and kind")),
            },
            Err(e) => report.error(format!("parsing rendered YAML from {key} failed: {e}")),
        }
    }
    kinds
}

/// `.Pipes.<key>` for every Pipe task of every plan, as KUDO's verifier provides them.
fn pipe_placeholders(package: &Package) -> BTreeMap<String, String> {
    let tasks: BTreeMap<&str, &Task> = package.operator.tasks.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut pipes = BTreeMap::new();
    for (plan, spec) in &package.operator.plans {
        for phase in &spec.phases {
            for step in &phase.steps {
                for name in &step.tasks {
                    let Some(task) = tasks.get(name.as_str()).filter(|t| t.kind == "Pipe") else { continue };
                    for pipe in &task.spec.pipe {
                        let artifact = format!("name.{plan}.{}.{}.{name}.{}", phase.name, step.name, pipe.key);
                        pipes.insert(pipe.key.clone(), artifact.to_lowercase());
                    }
                }
            }
        }
    }
    pipes
}
