//! The reconciler: one task that owns the agent's picture of its bundles and is the only one
//! to write to the cluster. Spec events, watch events and retry timers are its inputs; each is
//! handled to the end before the next, so no two writes to one object ever race.
//!
//! Rules it keeps:
//! - Objects are deleted only when the hub says so: a delete event, or an update that drops a
//!   manifest. A failure to reach the API server never deletes anything; it is retried with
//!   backoff and shown in the status (`ApiServerUnreachable`).
//! - A bundle's status is recomputed after every change and queued in the local store only
//!   when its hash differs from the last one queued.
//! - Drift (an applied object edited or deleted by someone else) is corrected at once, or only
//!   reported when the manifest's config says `driftPolicy: ReportOnly`.
//!
//! Each handler is decide + act: [`decide`] names what to do from the bundle's [`Phase`] and
//! the event, without I/O (unit-tested there); the handler here does it against the cluster.
//!
//! Modules: [`decide`] (phases and decisions), [`plugins`] (status feedback and reconcile
//! hooks, as the consumer's policies say), [`retry`] (the one scheduler of retries, keyed by
//! bundle), `refs` (object references).

mod decide;
mod plugins;
mod refs;
mod retry;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tracing::Instrument;

use super::apply::{self, ApplyError, Deletion, Discovery, Target};
use super::local::{AppliedRef, LocalBundle, LocalStore, PendingStatus};
use super::shared::ConsumerLabels;
pub use super::shared::Counters;
use super::status::{
    self, ApplyResult, Drift, DriftKind, Live, Observation, PluginFeedback, PluginHealth, PluginValue, Removal,
};
use super::watch::{Observed, Scope, WatchEvent, Watches};
use decide::{Action, Event, Phase, decide, delete_finished};
use maestro_model::config::{BundleSpec, ManifestPlan, UpdateStrategy};
use maestro_model::validate::ObjectKey;
use maestro_plugins::types::{
    Applied, BeforeApplyOutcome, BeforeDeleteOutcome, HealthState, HookBundle, Report, Value as FeedbackValue,
};
use maestro_plugins::{PluginFailure, PluginRuntime, Subject, World};
use refs::*;
use retry::{Retries, backoff};

/// A spec event, as the link hands it over.
#[derive(Debug, Clone)]
pub struct SpecInput {
    pub id: String,
    pub version: i64,
    pub original_source: String,
    pub deleting: bool,
    /// The event's data: `manifests`, `manifestConfigs`, `deleteOption`.
    pub bundle: Value,
    /// When the hub wrote this version (the event's `time`), for reconcile hooks.
    pub written_unix_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub enum Input {
    Spec(SpecInput),
    /// The hub's status hashes (bundle id, hash); every status that differs is sent again,
    /// every status when the list is empty.
    StatusResync(Vec<(String, String)>),
    /// The hub sent this consumer's plugin policies and labels (both already in force).
    Policies,
}

/// Why a reconcile hook keeps a bundle version from being applied or deleted.
#[derive(Debug, Clone, PartialEq)]
enum Hold {
    Skipped(String),
    Waiting,
    Failed(String),
    DeleteWaiting,
    DeleteFailed(String),
}

impl Hold {
    /// The bundle condition `Held`: (reason, message).
    fn describe(&self) -> (&'static str, String) {
        match self {
            Hold::Skipped(why) => ("SkippedByHook", why.clone()),
            Hold::Waiting => ("RequeuedByHook", "A reconcile hook asked to wait before applying this version".into()),
            Hold::Failed(why) => ("FailedByHook", why.clone()),
            Hold::DeleteWaiting => ("DeleteRequeuedByHook", "A reconcile hook asked to wait before deleting".into()),
            Hold::DeleteFailed(why) => ("DeleteFailedByHook", why.clone()),
        }
    }

    fn on_apply(&self) -> bool {
        matches!(self, Hold::Skipped(_) | Hold::Waiting | Hold::Failed(_))
    }
}

/// When a version the hooks held back is put to them again (besides new policies, which always
/// ask again, and a new version, which replaces it).
#[derive(Debug, Clone, Copy)]
enum AskAgain {
    After(Duration),
    WithBackoff,
    OnChange,
}

/// Shortest and longest wait a hook's requeue gets: never a busy loop, and a hook's answer is
/// asked again at least hourly (policy changes re-ask at once).
const MIN_REQUEUE: Duration = Duration::from_millis(250);
const MAX_REQUEUE: Duration = Duration::from_secs(3600);

fn requeue_delay(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms)).clamp(MIN_REQUEUE, MAX_REQUEUE)
}

/// Identity of an object in the cluster, independent of the API version it was written with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ObjId {
    group: String,
    plural: String,
    namespace: Option<String>,
    name: String,
}

impl ObjId {
    fn of(target: &Target) -> ObjId {
        ObjId {
            group: target.resource.group.clone(),
            plural: target.resource.plural.clone(),
            namespace: target.namespace.clone(),
            name: target.name.clone(),
        }
    }

    fn in_scope(scope: &Scope, namespace: Option<String>, name: String) -> ObjId {
        ObjId { group: scope.group.clone(), plural: scope.plural.clone(), namespace, name }
    }
}

#[derive(Debug, Clone)]
struct ObjectState {
    target: Option<Target>,
    result: ApplyResult,
    live: Live,
    /// The resourceVersion our last write produced: a newer one that no longer conforms is drift.
    applied_rv: Option<String>,
    drift: Option<Drift>,
    corrections: u32,
    removal: Option<Removal>,
    retry: bool,
    plugin: Option<PluginFeedback>,
}

impl ObjectState {
    fn new() -> ObjectState {
        ObjectState {
            target: None,
            result: ApplyResult::Pending,
            live: Live::Unknown,
            applied_rv: None,
            drift: None,
            corrections: 0,
            removal: None,
            retry: false,
            plugin: None,
        }
    }
}

struct BundleState {
    version: i64,
    original_source: String,
    bundle: Value,
    spec: BundleSpec,
    deleting: bool,
    objects: Vec<ObjectState>,
    /// Every object written for this bundle and not yet deleted (what the local store keeps).
    applied: Vec<AppliedRef>,
    /// Objects dropped from the bundle whose delete has not gone through yet.
    leftovers: Vec<AppliedRef>,
    status: Option<Value>,
    hash: Option<String>,
    attempt: u32,
    written_unix_ms: i64,
    hold: Option<Hold>,
    /// The before-delete hooks let this delete go ahead (they are not asked again).
    delete_cleared: bool,
}

impl BundleState {
    fn new(input: &SpecInput, applied: Vec<AppliedRef>) -> BundleState {
        let spec = BundleSpec::from_bundle(&input.bundle);
        BundleState {
            version: input.version,
            original_source: input.original_source.clone(),
            bundle: input.bundle.clone(),
            objects: spec.manifests.iter().map(|_| ObjectState::new()).collect(),
            spec,
            deleting: input.deleting,
            applied,
            leftovers: Vec::new(),
            status: None,
            hash: None,
            attempt: 0,
            // Unknown after a restart: counting from now only ever makes a bake period longer.
            written_unix_ms: input.written_unix_ms.unwrap_or_else(|| chrono::Utc::now().timestamp_millis()),
            hold: None,
            delete_cleared: false,
        }
    }

    fn local(&self, id: &str) -> LocalBundle {
        LocalBundle {
            id: id.to_owned(),
            version: self.version,
            original_source: self.original_source.clone(),
            bundle: self.bundle.clone(),
            deleting: self.deleting,
            applied: self.applied.clone(),
        }
    }
}

pub struct Reconciler {
    client: Client,
    discovery: Discovery,
    watches: Watches,
    local: LocalStore,
    outbox: Arc<Notify>,
    /// When each bundle is due again (failed writes, held versions, unfinished deletes).
    retries: Retries,
    bundles: HashMap<String, BundleState>,
    index: HashMap<ObjId, (String, usize)>,
    value_cap: usize,
    counters: Arc<Counters>,
    plugins: Option<Arc<PluginRuntime>>,
    /// The consumer (empty without plugins) and its labels as the hub last sent them, shared
    /// with the link, which updates them: the plugins' context.
    consumer: String,
    labels: ConsumerLabels,
}

/// The reconciler's inputs besides spec events.
pub struct Feeds {
    observed: mpsc::UnboundedReceiver<Observed>,
}

impl Reconciler {
    pub fn new(
        client: Client,
        local: LocalStore,
        outbox: Arc<Notify>,
        value_cap: usize,
        counters: Arc<Counters>,
    ) -> (Reconciler, Feeds) {
        let (observed_tx, observed) = mpsc::unbounded_channel();
        let reconciler = Reconciler {
            discovery: Discovery::new(client.clone()),
            watches: Watches::new(client.clone(), observed_tx),
            client,
            local,
            outbox,
            retries: Retries::default(),
            bundles: HashMap::new(),
            index: HashMap::new(),
            value_cap,
            counters,
            plugins: None,
            consumer: String::new(),
            labels: ConsumerLabels::default(),
        };
        (reconciler, Feeds { observed })
    }

    /// Runs the consumer's status-feedback plugins and reconcile hooks with `runtime`.
    /// `labels` are the consumer's, kept current by the link (the hub sends them on connect).
    pub fn with_plugins(mut self, consumer: &str, runtime: Arc<PluginRuntime>, labels: ConsumerLabels) -> Reconciler {
        self.consumer = consumer.to_owned();
        self.labels = labels;
        self.plugins = Some(runtime);
        self
    }

    /// Restores what the local store holds, then serves until `inputs` closes.
    pub async fn run(mut self, mut inputs: mpsc::Receiver<Input>, mut feeds: Feeds) {
        self.restore().await;
        let mut phases_counted = None;
        loop {
            tokio::select! {
                input = inputs.recv() => match input {
                    Some(Input::Spec(spec)) => {
                        let span = tracing::info_span!("spec", resource_id = %spec.id, version = spec.version);
                        self.on_spec(spec).instrument(span).await;
                    }
                    Some(Input::StatusResync(hashes)) => self.on_status_resync(hashes).await,
                    Some(Input::Policies) => self.on_policies().await,
                    None => break,
                },
                Some(observed) = feeds.observed.recv() => self.on_observed(observed).await,
                id = self.retries.next() => {
                    let span = tracing::info_span!("retry", resource_id = %id);
                    self.on_retry(id).instrument(span).await;
                }
            }
            self.counters.watched_objects.store(self.index.len() as u64, std::sync::atomic::Ordering::Relaxed);
            self.count_phases(&mut phases_counted);
        }
        self.watches.stop();
    }

    /// Updates the bundles-by-phase gauge: after every input while few bundles are held, at
    /// most once a second for many (counting walks every bundle).
    fn count_phases(&self, last: &mut Option<std::time::Instant>) {
        const ALWAYS_BELOW: usize = 256;
        let due = last.is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
        if self.bundles.len() >= ALWAYS_BELOW && !due {
            return;
        }
        *last = Some(std::time::Instant::now());
        let mut counts = [0i64; Phase::ALL.len()];
        for state in self.bundles.values() {
            counts[state.phase() as usize] += 1;
        }
        for (phase, count) in Phase::ALL.iter().zip(counts) {
            self.counters.bundles.set(phase.as_str(), count);
        }
    }

    /// After a restart: apply every stored bundle again (the cluster may have changed while the
    /// agent was away) and resume unfinished deletes.
    async fn restore(&mut self) {
        let stored = match self.local.bundles().await {
            Ok(stored) => stored,
            Err(err) => {
                tracing::error!(error = %err, "cannot read the local store; starting from the hub's resync alone");
                return;
            }
        };
        if !stored.is_empty() {
            tracing::info!(bundles = stored.len(), "restoring bundles from the local store");
        }
        for bundle in stored {
            let input = SpecInput {
                id: bundle.id.clone(),
                version: bundle.version,
                original_source: bundle.original_source.clone(),
                deleting: bundle.deleting,
                bundle: bundle.bundle.clone(),
                written_unix_ms: None,
            };
            let state = BundleState::new(&input, bundle.applied);
            if bundle.deleting {
                self.bundles.insert(bundle.id.clone(), state);
                self.delete_bundle(&bundle.id).await;
            } else {
                self.apply_bundle(&bundle.id, state).await;
            }
        }
    }

    async fn on_spec(&mut self, input: SpecInput) {
        let event = Event::Spec { version: input.version, deleting: input.deleting };
        match decide(self.bundles.get(&input.id), event) {
            Action::Ignore => tracing::debug!("spec not newer than what is held; dropped"),
            Action::Delete => self.start_delete(input).await,
            _ => self.start_version(input).await,
        }
    }

    /// The hub deleted the bundle: hooks asked afresh, then its objects deleted.
    async fn start_delete(&mut self, input: SpecInput) {
        tracing::info!("deleting bundle");
        let mut state = match self.bundles.remove(&input.id) {
            Some(state) => state,
            // Never applied here: nothing to delete, but the hub still needs its Deleted.
            None => BundleState::new(&SpecInput { bundle: json!({}), ..input.clone() }, Vec::new()),
        };
        state.deleting = true;
        state.version = input.version;
        state.attempt = 0;
        // A version held back from applying is moot now; the delete hooks decide afresh.
        state.hold = None;
        self.save(&input.id, &state).await;
        self.bundles.insert(input.id.clone(), state);
        self.delete_bundle(&input.id).await;
    }

    /// A new version: the objects of the previous one stay recorded until settled.
    async fn start_version(&mut self, input: SpecInput) {
        let manifests = input.bundle.get("manifests").and_then(Value::as_array).map_or(0, Vec::len);
        tracing::info!(manifests, "applying bundle");
        let previous = self.bundles.remove(&input.id);
        let mut applied = Vec::new();
        let mut carried = (None, None);
        if let Some(previous) = previous {
            self.unindex(&previous);
            applied = previous.applied;
            carried = (previous.status, previous.hash);
        }
        let mut state = BundleState::new(&input, applied);
        (state.status, state.hash) = carried;
        self.apply_bundle(&input.id, state).await;
    }

    /// Applies every manifest, removes objects the bundle no longer has, records the result;
    /// unless a before-apply hook holds the version back.
    async fn apply_bundle(&mut self, id: &str, mut state: BundleState) {
        if let Some(hold) = self.before_apply(id, &mut state).await {
            self.hold_apply(id, state, hold).await;
            return;
        }
        // Also when the hook that held it is no longer in force.
        state.hold = None;
        for ordinal in 0..state.objects.len() {
            let plan = state.spec.manifests[ordinal].clone();
            self.apply_object(id, &plan, &mut state.objects[ordinal]).await;
        }
        self.after_apply(id, &state).await;
        self.apply_bundle_tail(id, state).await;
    }

    async fn apply_object(&mut self, id: &str, plan: &ManifestPlan, object: &mut ObjectState) {
        let Some(key) = &plan.key else {
            object.result = ApplyResult::Refused {
                reason: "InvalidManifest".into(),
                message: "a manifest needs apiVersion, kind and metadata.name".into(),
            };
            object.live = Live::Absent;
            return;
        };
        let target = match &object.target {
            Some(target) => target.clone(),
            None => match self.discovery.resolve(key).await {
                Ok(target) => target,
                Err(err) => {
                    self.note_failure(key, &err);
                    object.result = err.result();
                    object.retry = err.should_retry();
                    if matches!(err, ApplyError::Refused { .. }) {
                        object.live = Live::Absent;
                    }
                    return;
                }
            },
        };
        // Watch first, so no change after the write is missed.
        self.watches.ensure(&target);
        self.index.insert(ObjId::of(&target), (id.to_owned(), plan.ordinal));
        object.target = Some(target.clone());
        self.counters.applies.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match apply::write(&self.client, &target, plan).await {
            Ok(written) => {
                self.counters.api.answered();
                object.applied_rv = resource_version(&written.live);
                object.live = written.live;
                object.result = written.result;
                object.retry = false;
            }
            Err(err) => {
                self.note_failure(key, &err);
                object.result = err.result();
                object.retry = err.should_retry();
            }
        }
    }

    fn note_failure(&self, key: &ObjectKey, err: &ApplyError) {
        self.counters.apply_errors.inc(err);
        self.counters.api.failed(err);
        match err {
            ApplyError::Unreachable { .. } => tracing::warn!(object = %key, error = %err, "apply failed; will retry"),
            ApplyError::Refused { .. } => {
                tracing::warn!(object = %key, error = %err, "the API server refused the manifest")
            }
        }
    }

    /// Works out which objects the bundle holds now and deletes those it dropped.
    async fn settle_applied(&mut self, state: &mut BundleState) {
        let written: Vec<AppliedRef> = state
            .objects
            .iter()
            .zip(&state.spec.manifests)
            .filter(|(object, plan)| {
                plan.strategy != UpdateStrategy::ReadOnly && matches!(object.result, ApplyResult::Applied { .. })
            })
            .filter_map(|(object, _)| object.target.as_ref().map(applied_ref))
            .collect();
        let (kept, dropped): (Vec<AppliedRef>, Vec<AppliedRef>) =
            std::mem::take(&mut state.applied).into_iter().chain(std::mem::take(&mut state.leftovers)).partition(
                |old| state.spec.manifests.iter().any(|plan| plan.key.as_ref().is_some_and(|k| same_object(old, k))),
            );
        let mut leftovers = Vec::new();
        for old in dropped {
            if state.spec.delete.keeps(&key_of(&old), Some(&old.plural)) {
                tracing::info!(object = %describe_ref(&old), "dropped from the bundle; kept by the delete option");
                continue;
            }
            match apply::delete(&self.client, &target_of(&old)).await {
                Ok(_) => tracing::info!(object = %describe_ref(&old), "dropped from the bundle; deleted"),
                Err(err) if err.should_retry() => {
                    tracing::warn!(object = %describe_ref(&old), error = %err, "cannot delete a dropped object yet");
                    leftovers.push(old);
                }
                Err(err) => {
                    tracing::warn!(object = %describe_ref(&old), error = %err, "cannot delete a dropped object")
                }
            }
        }
        let mut applied = written;
        for old in kept.into_iter().chain(leftovers.iter().cloned()) {
            if !applied.contains(&old) {
                applied.push(old);
            }
        }
        state.applied = applied;
        state.leftovers = leftovers;
    }

    // -----------------------------------------------------------------------------------------
    // Delete
    // -----------------------------------------------------------------------------------------

    async fn delete_bundle(&mut self, id: &str) {
        if !self.before_delete(id).await {
            return;
        }
        if let Some(state) = self.bundles.get_mut(id) {
            state.hold = None;
        }
        let Some(mut state) = self.bundles.remove(id) else { return };
        let policy = state.spec.delete.clone();
        for ordinal in 0..state.objects.len() {
            let plan = state.spec.manifests[ordinal].clone();
            let object = &mut state.objects[ordinal];
            if object.removal.is_some() {
                continue;
            }
            let Some(key) = &plan.key else {
                object.removal = Some(Removal::Deleted);
                continue;
            };
            let plural = object.target.as_ref().map(|t| t.resource.plural.clone());
            if plan.strategy == UpdateStrategy::ReadOnly || policy.keeps(key, plural.as_deref()) {
                object.removal = Some(Removal::Kept);
                continue;
            }
            let target = match &object.target {
                Some(target) => target.clone(),
                None => match self.discovery.resolve(key).await {
                    Ok(target) => target,
                    // The server does not know the kind, so no such object can exist.
                    Err(ApplyError::Refused { .. }) => {
                        object.removal = Some(Removal::Deleted);
                        continue;
                    }
                    Err(err) => {
                        tracing::warn!(object = %key, error = %err, "cannot delete yet; will retry");
                        object.retry = true;
                        continue;
                    }
                },
            };
            self.index.insert(ObjId::of(&target), (id.to_owned(), plan.ordinal));
            object.target = Some(target.clone());
            match apply::delete(&self.client, &target).await {
                Ok(Deletion::Gone) => {
                    object.removal = Some(Removal::Deleted);
                    object.live = Live::Absent;
                }
                // The watch reports the object gone; the retry timer checks again meanwhile.
                Ok(Deletion::InProgress) => object.retry = true,
                Err(err) => {
                    tracing::warn!(object = %key, error = %err, "delete failed; will retry");
                    object.result = err.result();
                    object.retry = true;
                }
            }
        }
        let leftovers = std::mem::take(&mut state.leftovers);
        for old in leftovers {
            if let Err(err) = apply::delete(&self.client, &target_of(&old)).await
                && err.should_retry()
            {
                state.leftovers.push(old);
            }
        }
        self.bundles.insert(id.to_owned(), state);
        self.finish_or_wait(id).await;
    }

    /// Reports `Deleted` and forgets the bundle once every object is gone or kept.
    async fn finish_or_wait(&mut self, id: &str) {
        let Some(state) = self.bundles.get(id) else { return };
        if !delete_finished(state) {
            self.refresh_status(id).await;
            self.schedule_retry(id);
            return;
        }
        let now = status::now_rfc3339();
        let resources = self.resource_statuses(state, &now);
        let final_status = status::bundle_status(state.version, resources, true, state.status.as_ref(), &now);
        let pending = PendingStatus {
            bundle_id: id.to_owned(),
            version: state.version,
            original_source: state.original_source.clone(),
            hash: status::status_hash(&final_status),
            status: final_status,
        };
        if let Err(err) = self.local.finish_delete(&pending).await {
            tracing::error!(resource_id = %id, error = %err, "cannot record the finished delete; will retry");
            self.schedule_retry(id);
            return;
        }
        tracing::info!(resource_id = %id, "bundle deleted");
        if let Some(state) = self.bundles.remove(id) {
            self.unindex(&state);
        }
        self.outbox.notify_one();
    }

    // -----------------------------------------------------------------------------------------
    // Watch events: status and drift
    // -----------------------------------------------------------------------------------------

    async fn on_observed(&mut self, observed: Observed) {
        match observed.event {
            WatchEvent::Applied(object) => {
                let Some(id) = obj_id(&observed.scope, &object) else { return };
                self.on_object(id, Some(object)).await;
            }
            WatchEvent::Deleted(object) => {
                let Some(id) = obj_id(&observed.scope, &object) else { return };
                self.on_object(id, None).await;
            }
            WatchEvent::Relisted(present) => {
                let missing: Vec<ObjId> = self
                    .index
                    .keys()
                    .filter(|id| id.group == observed.scope.group && id.plural == observed.scope.plural)
                    .filter(|id| observed.scope.namespace.is_none() || id.namespace == observed.scope.namespace)
                    .filter(|id| !present.contains(&(id.namespace.clone(), id.name.clone())))
                    .cloned()
                    .collect();
                // The list may predate our own latest write (a watch started just before it),
                // so absence is confirmed with one read before it counts as a deletion.
                for id in missing {
                    if self.confirmed_absent(&id).await {
                        self.on_object(id, None).await;
                    }
                }
            }
        }
    }

    async fn confirmed_absent(&self, id: &ObjId) -> bool {
        let Some((bundle_id, ordinal)) = self.index.get(id) else { return false };
        let target = self.bundles.get(bundle_id).and_then(|b| b.objects.get(*ordinal)).and_then(|o| o.target.as_ref());
        match target {
            Some(target) => matches!(apply::exists(&self.client, target).await, Ok(false)),
            None => false,
        }
    }

    /// An object changed (`Some`) or disappeared (`None`).
    async fn on_object(&mut self, obj: ObjId, live: Option<Value>) {
        let Some((bundle_id, ordinal)) = self.index.get(&obj).cloned() else { return };
        let action = decide(self.bundles.get(&bundle_id), Event::Observed { ordinal, live: live.as_ref() });
        if action == Action::Ignore {
            return;
        }
        let Some(mut state) = self.bundles.remove(&bundle_id) else { return };
        let (Some(plan), Some(object)) = (state.spec.manifests.get(ordinal).cloned(), state.objects.get_mut(ordinal))
        else {
            self.bundles.insert(bundle_id, state);
            return;
        };
        object.live = live.map_or(Live::Absent, Live::Present);
        match action {
            Action::Record { clear_drift: true } => object.drift = None,
            Action::Removed => {
                object.removal.get_or_insert(Removal::Deleted);
            }
            Action::Report(what) => {
                let name = plan.key.as_ref().map(ToString::to_string).unwrap_or_default();
                tracing::warn!(resource_id = %bundle_id, object = %name, ?what, "drift: reporting only");
                object.drift = Some(Drift::Reported { what });
            }
            Action::Restore(what) => self.correct_drift(&bundle_id, &plan, object, what).await,
            _ => {}
        }
        let deleting = state.deleting;
        self.bundles.insert(bundle_id.clone(), state);
        if deleting {
            self.finish_or_wait(&bundle_id).await;
        } else {
            self.refresh_status(&bundle_id).await;
        }
    }

    /// Writes an object someone else changed or deleted back as the manifest says.
    async fn correct_drift(&mut self, id: &str, plan: &ManifestPlan, object: &mut ObjectState, what: DriftKind) {
        let name = plan.key.as_ref().map(ToString::to_string).unwrap_or_default();
        tracing::warn!(resource_id = %id, object = %name, ?what, "drift: restoring the object");
        self.apply_object(id, plan, object).await;
        if matches!(object.result, ApplyResult::Applied { .. }) {
            object.corrections += 1;
            object.drift = Some(Drift::Corrected { what, count: object.corrections });
            self.counters.drift_corrections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else if object.retry {
            self.schedule_retry(id);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Retries and status
    // -----------------------------------------------------------------------------------------

    async fn on_retry(&mut self, id: String) {
        match decide(self.bundles.get(&id), Event::Retry) {
            Action::Delete => self.delete_bundle(&id).await,
            Action::Apply => {
                if let Some(state) = self.bundles.remove(&id) {
                    self.apply_bundle(&id, state).await;
                }
            }
            Action::ApplyOnly(ordinals) => {
                let Some(mut state) = self.bundles.remove(&id) else { return };
                for ordinal in ordinals {
                    let plan = state.spec.manifests[ordinal].clone();
                    self.apply_object(&id, &plan, &mut state.objects[ordinal]).await;
                }
                self.apply_bundle_tail(&id, state).await;
            }
            _ => {}
        }
    }

    async fn apply_bundle_tail(&mut self, id: &str, mut state: BundleState) {
        self.settle_applied(&mut state).await;
        self.save(id, &state).await;
        let retry = state.phase() == Phase::Retrying;
        if !retry {
            state.attempt = 0;
        }
        self.bundles.insert(id.to_owned(), state);
        self.refresh_status(id).await;
        if retry {
            self.schedule_retry(id);
        }
    }

    fn schedule_retry(&mut self, id: &str) {
        self.schedule_retry_in(id, None);
    }

    /// A retry after `delay`, or after the next backoff step when `None`; none if one is due
    /// already (the earlier stays).
    fn schedule_retry_in(&mut self, id: &str, delay: Option<Duration>) {
        let Some(state) = self.bundles.get_mut(id) else { return };
        if self.retries.is_scheduled(id) {
            return;
        }
        let delay = delay.unwrap_or_else(|| {
            state.attempt = state.attempt.saturating_add(1);
            backoff(state.attempt)
        });
        self.retries.schedule(id, delay);
    }

    fn resource_statuses(&self, state: &BundleState, now: &str) -> Vec<Value> {
        let previous = state.status.as_ref().and_then(|s| s.get("resourceStatus")).and_then(Value::as_array);
        state
            .objects
            .iter()
            .zip(&state.spec.manifests)
            .enumerate()
            .map(|(i, (object, plan))| {
                let observation = Observation {
                    plan,
                    resource: object.target.as_ref().map(|t| t.resource.plural.as_str()),
                    applied: &object.result,
                    live: &object.live,
                    drift: object.drift.as_ref(),
                    removal: object.removal,
                    plugin: object.plugin.as_ref(),
                };
                status::manifest_status(observation, previous.and_then(|p| p.get(i)), now, self.value_cap)
            })
            .collect()
    }

    /// Recomputes the bundle's status; queues it if its hash changed.
    async fn refresh_status(&mut self, id: &str) {
        self.run_feedback_plugins(id).await;
        let Some(state) = self.bundles.get(id) else { return };
        let now = status::now_rfc3339();
        let resources = self.resource_statuses(state, &now);
        let mut new_status = status::bundle_status(state.version, resources, false, state.status.as_ref(), &now);
        if let Some(hold) = &state.hold {
            let (reason, message) = hold.describe();
            status::add_condition(
                &mut new_status,
                "Held",
                "True",
                reason,
                &message,
                state.version,
                state.status.as_ref(),
                &now,
            );
        }
        let hash = status::status_hash(&new_status);
        if state.hash.as_deref() == Some(hash.as_str()) {
            return;
        }
        let pending = PendingStatus {
            bundle_id: id.to_owned(),
            version: state.version,
            original_source: state.original_source.clone(),
            status: new_status.clone(),
            hash: hash.clone(),
        };
        let summary = |kind: &str| {
            new_status["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == kind))
                .map_or_else(|| "-".to_owned(), |c| c["status"].as_str().unwrap_or("-").to_owned())
        };
        tracing::info!(resource_id = %id, version = state.version, applied = %summary("Applied"),
            available = %summary("Available"), "status changed; queued for the hub");
        if let Some(state) = self.bundles.get_mut(id) {
            state.status = Some(new_status);
            state.hash = Some(hash);
        }
        self.queue(&pending).await;
    }

    async fn queue(&self, pending: &PendingStatus) {
        match self.local.queue_status(pending).await {
            Ok(()) => self.outbox.notify_one(),
            Err(err) => tracing::error!(resource_id = %pending.bundle_id, error = %err, "cannot queue a status"),
        }
    }

    async fn on_status_resync(&mut self, hashes: Vec<(String, String)>) {
        let known: HashMap<&str, &str> = hashes.iter().map(|(id, hash)| (id.as_str(), hash.as_str())).collect();
        let mut resend = Vec::new();
        for (id, state) in &self.bundles {
            let (Some(status), Some(hash)) = (&state.status, &state.hash) else { continue };
            // As OCM's agents: only what the hub lists (all when it lists nothing); a bundle the
            // hub does not list is one it is deleting or never had, and its delete will come.
            if known.is_empty() || known.get(id.as_str()).is_some_and(|listed| *listed != hash.as_str()) {
                resend.push(PendingStatus {
                    bundle_id: id.clone(),
                    version: state.version,
                    original_source: state.original_source.clone(),
                    status: status.clone(),
                    hash: hash.clone(),
                });
            }
        }
        tracing::info!(statuses = resend.len(), "the hub asked for statuses again");
        for pending in resend {
            self.queue(&pending).await;
        }
    }

    async fn save(&self, id: &str, state: &BundleState) {
        if let Err(err) = self.local.save_bundle(&state.local(id)).await {
            tracing::error!(resource_id = %id, error = %err, "cannot record the bundle in the local store");
        }
    }

    fn unindex(&mut self, state: &BundleState) {
        for target in state.objects.iter().filter_map(|o| o.target.as_ref()) {
            self.index.remove(&ObjId::of(target));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_older_than_our_write_are_stale() {
        let at = |rv: &str| json!({"metadata": {"resourceVersion": rv}});
        assert!(is_stale(&at("5"), Some("7")));
        assert!(!is_stale(&at("8"), Some("7")));
        assert!(!is_stale(&at("abc"), Some("7")));
        assert!(!is_stale(&at("5"), None));
    }

    #[test]
    fn a_recorded_object_matches_its_manifest_across_api_versions() {
        let applied = AppliedRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
            namespace: Some("default".into()),
            name: "web".into(),
        };
        let key = |group: &str, ns: Option<&str>, name: &str| ObjectKey {
            group: group.into(),
            version: "v1beta2".into(),
            kind: "Deployment".into(),
            namespace: ns.map(str::to_owned),
            name: name.into(),
        };
        assert!(same_object(&applied, &key("apps", Some("default"), "web")));
        assert!(same_object(&applied, &key("apps", None, "web")));
        assert!(!same_object(&applied, &key("apps", Some("other"), "web")));
        assert!(!same_object(&applied, &key("apps", Some("default"), "api")));
        let target = target_of(&applied);
        assert_eq!((target.resource.group.as_str(), target.resource.version.as_str()), ("apps", "v1"));
        assert_eq!(applied_ref(&target), applied);
    }
}
