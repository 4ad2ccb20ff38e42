//! The hub's write services: the one door through which anything changes what the hub stores.
//!
//! Every writer goes through these — the REST handlers today, the gRPC API and the operator and
//! rollout engines next — so none can skip a check: a write is parsed by its caller, then checked
//! structurally, then by the consumer's validator plugins (whose mutations are checked again),
//! then stored together with its outbox row. Policy changes and consumer label changes queue
//! their pushes to agents in the same transaction (the policy outbox); nothing here talks to the
//! broker. Errors are one type, [`ServiceError`], which each API maps onto its own shape.
//!
//! - [`bundles`]: create, replace and delete resource bundles (the resource API is a view).
//! - [`consumers`]: create, relabel and delete consumers.
//! - [`policies`]: create, replace and delete stored plugin policies.
//! - [`packages`]: upload (verified) and delete operator package versions.

pub mod bundles;
pub mod consumers;
pub mod packages;
pub mod policies;

use std::sync::Arc;

use maestro_model::validate::{self, Violation};
use maestro_plugins::{PluginRuntime, Subject};
use maestro_store::{Store, StoreError};

pub use bundles::{BundleService, ForceDeletes, ForceTrigger, WriteKeys};
pub use consumers::{ConsumerService, NewConsumer};
pub use packages::PackageService;
pub use policies::PolicyService;

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The write breaks a rule: every violation found, each naming its field.
    #[error("invalid: {}", describe(.0))]
    Invalid(Vec<Violation>),
    /// What the write names is not there (or not visible through the caller's view).
    #[error("{0}")]
    NotFound(String),
    /// The write needs plugins and this hub runs without them.
    #[error("plugins are off on this hub: start it with --plugin-dir")]
    PluginsOff,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn describe(violations: &[Violation]) -> String {
    violations.iter().map(|v| format!("{}: {}", v.field, v.message)).collect::<Vec<_>>().join("; ")
}

/// Returns the violations as an error when there are any.
fn refuse_if_any(violations: Vec<Violation>) -> Result<(), ServiceError> {
    if violations.is_empty() { Ok(()) } else { Err(ServiceError::Invalid(violations)) }
}

/// The consumer as policies select it (name and labels); an unknown consumer has no labels (a
/// write naming it is refused by the store right after; an event naming it is dropped).
pub async fn consumer_subject(store: &Store, consumer: &str) -> Result<Subject, StoreError> {
    match store.get_consumer(consumer).await {
        Ok(found) => Ok(Subject::consumer(consumer, &found.labels)),
        Err(StoreError::NotFound(_)) => Ok(Subject::consumer(consumer, &Default::default())),
        Err(err) => Err(err),
    }
}

/// The services of one hub, sharing its store and plugin runtime.
#[derive(Clone)]
pub struct Services {
    pub bundles: Arc<BundleService>,
    pub consumers: Arc<ConsumerService>,
    pub policies: Arc<PolicyService>,
    pub packages: Arc<PackageService>,
}

impl Services {
    pub fn new(
        store: Arc<Store>,
        plugins: Option<Arc<PluginRuntime>>,
        limits: validate::Limits,
        force_deletes: ForceDeletes,
    ) -> Self {
        Services {
            bundles: Arc::new(BundleService::new(store.clone(), plugins.clone(), limits, force_deletes)),
            consumers: Arc::new(ConsumerService::new(store.clone())),
            policies: Arc::new(PolicyService::new(store.clone(), plugins)),
            packages: Arc::new(PackageService::new(store)),
        }
    }

    /// Deletes a consumer, which must have no bundles left; with `cascade`, its bundles are
    /// force-deleted first (see [`BundleService::force_delete`]).
    pub async fn delete_consumer(&self, id_or_name: &str, cascade: bool) -> Result<(), ServiceError> {
        if cascade {
            let name = self.consumers.name_of(id_or_name).await?;
            let purged = self.bundles.force_delete_all_of(&name).await?;
            tracing::warn!(consumer = %name, purged, "consumer delete cascades to its bundles");
        }
        self.consumers.delete(id_or_name).await
    }
}
