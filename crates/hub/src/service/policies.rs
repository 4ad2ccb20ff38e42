//! Stored plugin policy writes. A policy is stored only if it can run: its plugins are loaded,
//! of the right world, match their pins, and accept their settings. After a change the runtime
//! of this hub is refreshed at once (other hubs follow the database's notification), and the
//! store has queued a policy push for every consumer the policy selected before or selects now.

use std::sync::Arc;

use maestro_model::policy::PolicySpec;
use maestro_model::validate::Violation;
use maestro_plugins::PluginRuntime;
use maestro_store::{Store, StoredPolicy};

use super::ServiceError;

pub struct PolicyService {
    store: Arc<Store>,
    plugins: Option<Arc<PluginRuntime>>,
}

impl PolicyService {
    pub fn new(store: Arc<Store>, plugins: Option<Arc<PluginRuntime>>) -> Self {
        PolicyService { store, plugins }
    }

    pub async fn create(&self, spec: &PolicySpec) -> Result<StoredPolicy, ServiceError> {
        let runtime = self.checked(spec).await?;
        let stored = self.store.create_plugin_policy(spec).await?;
        self.refresh(runtime).await?;
        tracing::info!(policy = %spec.name, "plugin policy created");
        Ok(stored)
    }

    /// Replaces the policy `name`; the spec must keep the name.
    pub async fn replace(&self, name: &str, spec: &PolicySpec) -> Result<StoredPolicy, ServiceError> {
        if spec.name != name {
            let message = format!("name cannot change from {name:?} to {:?}", spec.name);
            return Err(ServiceError::Invalid(vec![Violation { field: "name".into(), message }]));
        }
        let runtime = self.checked(spec).await?;
        let stored = self.store.replace_plugin_policy(spec).await?;
        self.refresh(runtime).await?;
        tracing::info!(policy = %spec.name, "plugin policy replaced");
        Ok(stored)
    }

    pub async fn delete(&self, name: &str) -> Result<(), ServiceError> {
        self.store.delete_plugin_policy(name).await?;
        if let Some(runtime) = &self.plugins {
            self.refresh(runtime).await?;
        }
        tracing::info!(policy = %name, "plugin policy deleted");
        Ok(())
    }

    /// The runtime, once `spec` is known to be storable.
    async fn checked(&self, spec: &PolicySpec) -> Result<&Arc<PluginRuntime>, ServiceError> {
        let Some(runtime) = &self.plugins else { return Err(ServiceError::PluginsOff) };
        let problems = runtime.check_policy(spec.clone()).await;
        if !problems.is_empty() {
            let details = problems.into_iter().map(|(field, message)| Violation { field, message }).collect();
            return Err(ServiceError::Invalid(details));
        }
        Ok(runtime)
    }

    /// Puts the stored policies in force on this hub, right after a change.
    async fn refresh(&self, runtime: &PluginRuntime) -> Result<(), ServiceError> {
        let policies = self.store.list_plugin_policies().await?;
        runtime.set_stored_policies(policies.into_iter().map(|p| p.spec).collect());
        Ok(())
    }
}
