//! Resource bundle writes: structural checks, the consumer's validator plugins, the store.
//!
//! The resource API (`/resources`) writes through the same calls; it shows bundles of one
//! manifest and renames fields in the violations it reports, which is the API's business.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use maestro_model::validate::{self, Violation, validate_bundle, validate_labels, validate_name};
use maestro_model::{BundleContent, StoredBundle};
use maestro_plugins::{Operation, PluginRuntime, World};
use maestro_store::{NewBundle, Store};

use super::{ServiceError, refuse_if_any};

/// What a write says about the bundle besides its content: its identity and, for a replace,
/// the version the writer read (so a concurrent change is not overwritten).
#[derive(Debug, Clone, Default)]
pub struct WriteKeys {
    pub id: Option<String>,
    pub name: Option<String>,
    pub consumer_name: Option<String>,
    pub version: Option<i64>,
}

/// Who asked for a force delete (a fixed set: the metric's label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForceTrigger {
    /// `DELETE ...?force=true`.
    Api,
    /// `DELETE /consumers/{id}?cascade=true`.
    Cascade,
    /// `--stale-delete-after`: no agent confirmed the delete in time.
    Stale,
}

impl ForceTrigger {
    fn label(self) -> &'static str {
        match self {
            ForceTrigger::Api => "api",
            ForceTrigger::Cascade => "cascade",
            ForceTrigger::Stale => "stale",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    trigger: &'static str,
}

/// Bundles purged without their agent's confirmation, by trigger (`/metrics`).
#[derive(Clone, Default, Debug)]
pub struct ForceDeletes(Family<TriggerLabels, Counter>);

impl ForceDeletes {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "bundles_force_deleted",
            "Bundles purged without their agent's confirmation, by trigger (api, cascade, stale)",
            self.0.clone(),
        );
    }
}

pub struct BundleService {
    store: Arc<Store>,
    plugins: Option<Arc<PluginRuntime>>,
    limits: validate::Limits,
    force_deletes: ForceDeletes,
}

impl BundleService {
    pub fn new(
        store: Arc<Store>,
        plugins: Option<Arc<PluginRuntime>>,
        limits: validate::Limits,
        force_deletes: ForceDeletes,
    ) -> Self {
        BundleService { store, plugins, limits, force_deletes }
    }

    /// Creates a bundle (a new UUID unless `keys.id` names one; the name defaults to the id).
    pub async fn create(&self, keys: WriteKeys, content: BundleContent) -> Result<StoredBundle, ServiceError> {
        let mut violations = Vec::new();
        let id = match keys.id {
            Some(id) => match uuid::Uuid::parse_str(&id) {
                Ok(uuid) => uuid.hyphenated().to_string(),
                Err(_) => {
                    violations
                        .push(Violation { field: "id".into(), message: format!("id must be a UUID, found {id:?}") });
                    id
                }
            },
            None => uuid::Uuid::new_v4().to_string(),
        };
        let name = keys.name.unwrap_or_else(|| id.clone());
        validate_name(&name, "name", &mut violations);
        let consumer_name = keys.consumer_name.unwrap_or_default();
        if consumer_name.is_empty() {
            violations.push(Violation { field: "consumer_name".into(), message: "consumer_name is required".into() });
        }
        self.check_content(&content, &mut violations);
        refuse_if_any(violations)?;
        let content = self.with_plugins(&consumer_name, Operation::Create, content).await?;
        let stored = self.store.create_bundle(&NewBundle { id, name, consumer_name, content }).await?;
        tracing::info!(consumer = %stored.consumer_name, resource_id = %stored.id, "bundle created");
        Ok(stored)
    }

    /// Replaces a bundle's content if `keys.version` is the stored version. `visible` refuses a
    /// stored bundle the caller's view cannot show (the resource API: several manifests).
    pub async fn replace(
        &self,
        id: &str,
        keys: WriteKeys,
        content: BundleContent,
        visible: impl FnOnce(&StoredBundle) -> Result<(), ServiceError>,
    ) -> Result<StoredBundle, ServiceError> {
        let Some(version) = keys.version else {
            return Err(ServiceError::Invalid(vec![Violation {
                field: "version".into(),
                message: "version is required: send the version you read, so a concurrent change is not overwritten"
                    .into(),
            }]));
        };
        let current = self.store.get_bundle(id).await?;
        visible(&current)?;
        let mut violations = Vec::new();
        immutable("id", keys.id.as_deref(), &current.id, &mut violations);
        immutable("name", keys.name.as_deref(), &current.name, &mut violations);
        immutable("consumer_name", keys.consumer_name.as_deref(), &current.consumer_name, &mut violations);
        self.check_content(&content, &mut violations);
        refuse_if_any(violations)?;
        let content = self.with_plugins(&current.consumer_name, Operation::Update, content).await?;
        let stored = self.store.replace_bundle(&current, version, &content).await?;
        tracing::info!(consumer = %stored.consumer_name, resource_id = %stored.id, version = stored.version, "bundle replaced");
        Ok(stored)
    }

    /// Marks a bundle deleting (its agent confirms before it is purged).
    pub async fn delete(&self, id: &str) -> Result<StoredBundle, ServiceError> {
        let bundle = self.store.mark_bundle_deleting(id).await?;
        tracing::info!(consumer = %bundle.consumer_name, resource_id = %bundle.id, "bundle marked deleting");
        Ok(bundle)
    }

    /// [`BundleService::delete`] (or, with `force`, [`BundleService::force_delete`]) for a
    /// caller whose view shows only some bundles: `visible` refuses the others, as for
    /// [`BundleService::replace`].
    pub async fn delete_visible(
        &self,
        id: &str,
        force: bool,
        visible: impl FnOnce(&StoredBundle) -> Result<(), ServiceError>,
    ) -> Result<StoredBundle, ServiceError> {
        visible(&self.store.get_bundle(id).await?)?;
        if force { self.force_delete(id, ForceTrigger::Api).await } else { self.delete(id).await }
    }

    /// Purges a bundle now, deleting or not, without waiting for its agent; a delete event is
    /// still queued, so a connected agent deletes the objects. The way out of a delete whose
    /// agent is gone for good (logged and counted: it may leave objects behind).
    pub async fn force_delete(&self, id: &str, trigger: ForceTrigger) -> Result<StoredBundle, ServiceError> {
        let bundle = self.store.force_delete_bundle(id).await?;
        self.force_deletes.0.get_or_create(&TriggerLabels { trigger: trigger.label() }).inc();
        tracing::warn!(consumer = %bundle.consumer_name, resource_id = %bundle.id, version = bundle.version,
            trigger = trigger.label(), deleting_since = ?bundle.deleted_at,
            "bundle force-deleted: purged without its agent's confirmation");
        Ok(bundle)
    }

    /// Force-deletes each of `ids`; how many were still there (its agent may have confirmed,
    /// or another writer removed one, meanwhile).
    async fn force_delete_each(&self, ids: Vec<String>, trigger: ForceTrigger) -> Result<usize, ServiceError> {
        let mut purged = 0;
        for id in ids {
            match self.force_delete(&id, trigger).await {
                Ok(_) => purged += 1,
                Err(ServiceError::Store(maestro_store::StoreError::NotFound(_))) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(purged)
    }

    /// Force-deletes every bundle of a consumer (`?cascade=true`); how many.
    pub async fn force_delete_all_of(&self, consumer_name: &str) -> Result<usize, ServiceError> {
        let ids = self.store.bundle_ids_of(consumer_name).await?;
        self.force_delete_each(ids, ForceTrigger::Cascade).await
    }

    /// Force-deletes bundles marked deleting more than `after` ago (`--stale-delete-after`);
    /// how many, in batches so one pass stays short.
    pub async fn retire_stale_deletes(&self, after: Duration) -> Result<usize, ServiceError> {
        const BATCH: i64 = 100;
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
        let mut retired = 0;
        loop {
            let ids = self.store.stale_deletes(cutoff, BATCH).await?;
            let full = ids.len() as i64 == BATCH;
            retired += self.force_delete_each(ids, ForceTrigger::Stale).await?;
            if !full {
                return Ok(retired);
            }
        }
    }

    fn check_content(&self, content: &BundleContent, violations: &mut Vec<Violation>) {
        if let Some(labels) = content.metadata.get("labels") {
            validate_labels(labels, "metadata.labels", violations);
        }
        violations.extend(validate_bundle(
            &content.manifests,
            &content.manifest_configs,
            content.delete_option.as_ref(),
            &self.limits,
        ));
    }

    /// The consumer's validator plugins, after the structural checks: a denial (or a
    /// fail-closed failure) refuses the write with every violation; a mutated manifest is
    /// checked structurally again, like one a client sent.
    async fn with_plugins(
        &self,
        consumer_name: &str,
        op: Operation,
        mut content: BundleContent,
    ) -> Result<BundleContent, ServiceError> {
        let Some(runtime) = &self.plugins else { return Ok(content) };
        if !runtime.has_point(World::Validator) {
            return Ok(content);
        }
        let subject = super::consumer_subject(&self.store, consumer_name).await?;
        let outcome = runtime.validate(subject, op, std::mem::take(&mut content.manifests)).await;
        content.manifests = outcome.manifests;
        let mut violations = outcome.violations;
        if violations.is_empty() && outcome.mutated {
            self.check_content(&content, &mut violations);
        }
        refuse_if_any(violations)?;
        Ok(content)
    }
}

fn immutable(field: &str, sent: Option<&str>, stored: &str, violations: &mut Vec<Violation>) {
    if let Some(sent) = sent.filter(|sent| *sent != stored) {
        violations.push(Violation {
            field: field.into(),
            message: format!("{field} cannot change from {stored:?} to {sent:?}"),
        });
    }
}
