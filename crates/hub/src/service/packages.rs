//! The hub's operator package repository: an uploaded archive is read within the package
//! limits and verified with every `package verify` check before it is stored; a refused upload
//! lists every reason and stores nothing. Versions are immutable: the same archive again is
//! accepted, other content for a stored version is a conflict.

use std::sync::Arc;

use maestro_model::validate::Violation;
use maestro_package::types::Plan;
use maestro_package::{Limits, Package, read_tgz, verify};
use maestro_store::Store;
use maestro_store::packages::{NewPackage, StoredPackage};
use serde_json::{Value, json};

use super::ServiceError;

pub struct PackageService {
    store: Arc<Store>,
    limits: Limits,
}

impl PackageService {
    pub fn new(store: Arc<Store>) -> Self {
        PackageService { store, limits: Limits::default() }
    }

    /// The largest archive accepted (the upload route's body limit).
    pub fn max_archive_bytes(&self) -> usize {
        usize::try_from(self.limits.max_archive_bytes).unwrap_or(usize::MAX)
    }

    pub async fn upload(&self, archive: Vec<u8>) -> Result<StoredPackage, ServiceError> {
        let package = read_tgz(&archive, &self.limits)
            .map_err(|e| ServiceError::Invalid(vec![Violation { field: "archive".into(), message: e.to_string() }]))?;
        let report = verify::verify(&package);
        if !report.is_ok() {
            let violations = report.errors.into_iter().map(|message| Violation { field: "package".into(), message });
            return Err(ServiceError::Invalid(violations.collect()));
        }
        let operator = &package.operator;
        let new = NewPackage {
            name: operator.name.clone(),
            app_version: operator.app_version.clone(),
            operator_version: operator.operator_version.clone(),
            archive_name: operator.archive_name(),
            description: operator.description.clone(),
            digest: maestro_package::index::digest(&archive),
            summary: summary(&package, &report.warnings),
            archive,
        };
        let stored = self.store.put_package(&new).await?;
        tracing::info!(package = %stored.archive_name, digest = %stored.digest, "operator package stored");
        Ok(stored)
    }

    pub async fn delete(&self, name: &str, app: &str, operator: &str) -> Result<(), ServiceError> {
        self.store.delete_package(name, app, operator).await?;
        tracing::info!(package = %name, app_version = %app, operator_version = %operator, "operator package deleted");
        Ok(())
    }
}

/// What listings show without unpacking: parameters, plans, maintainers, verify's warnings.
fn summary(package: &Package, warnings: &[String]) -> Value {
    let parameters: Vec<Value> = package
        .params
        .parameters
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "description": p.description,
                "default": p.default.as_ref().map(maestro_gotmpl::kudo::scalar_text),
                "required": p.is_required(),
                "type": p.value_type(),
                "trigger": (!p.trigger.is_empty()).then_some(&p.trigger),
                "immutable": p.is_immutable(),
            })
        })
        .collect();
    let plans: serde_json::Map<String, Value> =
        package.operator.plans.iter().map(|(name, plan)| (name.clone(), plan_summary(plan))).collect();
    json!({
        "parameters": parameters,
        "plans": plans,
        "maintainers": package.operator.maintainers,
        "kubernetes_version": package.operator.kubernetes_version,
        "warnings": warnings,
    })
}

fn plan_summary(plan: &Plan) -> Value {
    let strategy = |s: &str| if s == "serial" { "serial" } else { "parallel" };
    json!({
        "strategy": strategy(&plan.strategy),
        "phases": plan.phases.iter().map(|phase| json!({
            "name": phase.name,
            "strategy": strategy(&phase.strategy),
            "steps": phase.steps.iter().map(|s| json!({"name": s.name, "tasks": s.tasks})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
