//! Rendering a package's templates as KUDO's engine does for one instance and step: dot is
//! the metadata (`.Name`, `.Namespace`, `.OperatorName`, `.OperatorVersion`, `.AppVersion`,
//! `.PlanName`, `.PhaseName`, `.StepName`), `.Params` (typed as KUDO types them) and `.Pipes`.

use std::collections::BTreeMap;

use maestro_gotmpl::{Value, kudo};
use serde::Serialize;

use crate::Package;

/// Who and where a render is for.
#[derive(Debug, Clone)]
pub struct Meta {
    pub instance: String,
    pub namespace: String,
    pub plan: String,
    pub phase: String,
    pub step: String,
}

impl Meta {
    /// What `package verify` renders with, as KUDO's `WithDefaults()`: each name is itself.
    pub fn placeholders() -> Meta {
        Meta {
            instance: "Name".into(),
            namespace: "Namespace".into(),
            plan: "PlanName".into(),
            phase: "PhaseName".into(),
            step: "StepName".into(),
        }
    }
}

/// One template's outcome, in the goldens' shape: `{"rendered": ...}` or `{"error": ...}`
/// (`parse: ...`, `render: ...`, Go's own texts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Rendered(String),
    Error(String),
}

impl Package {
    /// The metadata part of dot.
    pub fn meta_values(&self, meta: &Meta) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("Name".to_string(), meta.instance.clone()),
            ("Namespace".to_string(), meta.namespace.clone()),
            ("OperatorName".to_string(), self.operator.name.clone()),
            ("OperatorVersion".to_string(), self.operator.operator_version.clone()),
            ("AppVersion".to_string(), self.operator.app_version.clone()),
            ("PlanName".to_string(), meta.plan.clone()),
            ("PhaseName".to_string(), meta.phase.clone()),
            ("StepName".to_string(), meta.step.clone()),
        ])
    }

    /// Dot for a render: the instance's parameter values (strings, as
    /// `Instance.spec.parameters` holds them) over the defaults. A value given for a
    /// parameter the package does not declare is an error naming it.
    pub fn data(
        &self,
        meta: &Meta,
        values: &BTreeMap<String, String>,
        pipes: BTreeMap<String, String>,
    ) -> Result<Value, String> {
        if let Some(unknown) = values.keys().find(|k| self.parameter(k).is_none()) {
            return Err(format!("parameter {unknown:?} is not declared in params.yaml"));
        }
        let file = serde_yaml::to_value(&self.params).map_err(|e| format!("params.yaml: {e}"))?;
        let params = kudo::params(&file, values)?;
        Ok(kudo::data(&self.meta_values(meta), params, pipes))
    }

    /// Every template rendered with `data`, by key.
    pub fn render_all(&self, data: &Value) -> BTreeMap<String, Outcome> {
        self.templates.iter().map(|(key, source)| (key.clone(), render_one(key, source, data))).collect()
    }
}

pub fn render_one(key: &str, source: &str, data: &Value) -> Outcome {
    match maestro_gotmpl::render(key, source, data) {
        Ok(text) => Outcome::Rendered(text),
        Err(e) => Outcome::Error(e.kudo_text()),
    }
}
