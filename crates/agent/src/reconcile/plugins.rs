//! The reconciler's plugins: status feedback and reconcile hooks, as the consumer's policies
//! say. Calls run off the reconciler's thread (the runtime's async forms), each bounded.

use super::*;

impl Reconciler {
    pub(super) fn subject_for(&self, id: &str, version: i64) -> Subject {
        Subject {
            consumer: self.consumer.clone(),
            labels: self.labels.get(),
            resource_id: id.to_owned(),
            resource_version: version,
        }
    }

    /// The runtime, when some policy in force has steps at `world` (otherwise no call is made).
    pub(super) fn runtime_for(&self, world: World) -> Option<Arc<PluginRuntime>> {
        self.plugins.as_ref().filter(|runtime| runtime.has_point(world)).cloned()
    }

    /// New policies or labels: statuses are recomputed with the feedback plugins now in force,
    /// and versions a hook held back are put to the hooks again.
    pub(super) async fn on_policies(&mut self) {
        let ids: Vec<String> = self.bundles.keys().cloned().collect();
        tracing::info!(bundles = ids.len(), "plugin policies changed; re-evaluating");
        for id in ids {
            match decide(self.bundles.get(&id), Event::Policies) {
                Action::Apply => {
                    if let Some(state) = self.bundles.remove(&id) {
                        self.apply_bundle(&id, state).await;
                    }
                }
                Action::Delete => self.delete_bundle(&id).await,
                Action::Record { .. } => self.refresh_status(&id).await,
                _ => {}
            }
        }
    }

    pub(super) fn hook_bundle(state: &BundleState) -> HookBundle {
        let manifests = state.bundle.get("manifests").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        HookBundle {
            manifests: manifests.iter().map(Value::to_string).collect(),
            updated_unix_ms: state.written_unix_ms,
        }
    }

    /// Runs the before-apply hooks; `Some` when they hold this version back, with when to ask
    /// again. Manifests a hook changed replace the ones to apply (the local store keeps the
    /// hub's, so a restart asks the hooks again).
    pub(super) async fn before_apply(&self, id: &str, state: &mut BundleState) -> Option<(Hold, AskAgain)> {
        let runtime = self.runtime_for(World::ReconcileHook)?;
        let sent = Self::hook_bundle(state);
        let original = sent.manifests.clone();
        let manifests = match runtime.before_apply(self.subject_for(id, state.version), sent).await {
            BeforeApplyOutcome::Proceed(manifests) => manifests,
            BeforeApplyOutcome::Skip(why) => return Some((Hold::Skipped(why), AskAgain::OnChange)),
            BeforeApplyOutcome::Requeue(ms) => return Some((Hold::Waiting, AskAgain::After(requeue_delay(ms)))),
            BeforeApplyOutcome::Fail(why) => return Some((Hold::Failed(why), AskAgain::WithBackoff)),
        };
        if manifests != original {
            let parsed: Result<Vec<Value>, _> = manifests.iter().map(|m| serde_json::from_str(m)).collect();
            let Ok(parsed) = parsed else {
                return Some((
                    Hold::Failed("a before-apply hook returned a manifest that is not JSON".into()),
                    AskAgain::WithBackoff,
                ));
            };
            let mut bundle = state.bundle.clone();
            bundle["manifests"] = Value::Array(parsed);
            state.spec = BundleSpec::from_bundle(&bundle);
            state.objects = state.spec.manifests.iter().map(|_| ObjectState::new()).collect();
            tracing::info!("a before-apply hook changed the manifests");
        }
        None
    }

    /// Records a version the hooks hold back: nothing is written, every manifest and the
    /// bundle's `Held` condition say why. A skip waits for a new version or new policies.
    pub(super) async fn hold_apply(&mut self, id: &str, mut state: BundleState, (hold, again): (Hold, AskAgain)) {
        let (reason, message) = hold.describe();
        tracing::info!(reason, message = %message, "a reconcile hook holds this version back");
        let result = match hold {
            Hold::Waiting => ApplyResult::Retrying { reason: reason.into(), message: message.clone() },
            _ => ApplyResult::Refused { reason: reason.into(), message: message.clone() },
        };
        for object in &mut state.objects {
            object.result = result.clone();
            object.retry = false;
        }
        if hold == Hold::Waiting {
            state.attempt = 0;
        }
        state.hold = Some(hold);
        self.save(id, &state).await;
        self.bundles.insert(id.to_owned(), state);
        self.refresh_status(id).await;
        match again {
            AskAgain::After(delay) => self.schedule_retry_in(id, Some(delay)),
            AskAgain::WithBackoff => self.schedule_retry_in(id, None),
            AskAgain::OnChange => {}
        }
    }

    /// Tells the after-apply hooks what each manifest's write did; what they report is logged.
    pub(super) async fn after_apply(&self, id: &str, state: &BundleState) {
        let Some(runtime) = self.runtime_for(World::ReconcileHook) else { return };
        let results = state
            .objects
            .iter()
            .enumerate()
            .map(|(index, object)| {
                let (ok, message) = match &object.result {
                    ApplyResult::Applied { message } => (true, message.clone()),
                    ApplyResult::Pending => (false, "not applied".to_owned()),
                    ApplyResult::Refused { reason, message } | ApplyResult::Retrying { reason, message } => {
                        (false, format!("{reason}: {message}"))
                    }
                };
                Applied { index: u32::try_from(index).unwrap_or(u32::MAX), ok, message }
            })
            .collect();
        let bundle = Self::hook_bundle(state);
        if let Err(errors) = runtime.after_apply(self.subject_for(id, state.version), bundle, results).await {
            tracing::warn!(errors = %errors, "after-apply hooks reported errors");
        }
    }

    /// Asks the before-delete hooks once per delete; false while they hold it back (the bundle's
    /// status then says why, and a retry is scheduled).
    pub(super) async fn before_delete(&mut self, id: &str) -> bool {
        let Some(runtime) = self.runtime_for(World::ReconcileHook) else { return true };
        let Some(state) = self.bundles.get(id) else { return true };
        if state.delete_cleared || state.applied.is_empty() && state.spec.manifests.is_empty() {
            return true;
        }
        let outcome = runtime.before_delete(self.subject_for(id, state.version), Self::hook_bundle(state)).await;
        let Some(state) = self.bundles.get_mut(id) else { return true };
        let (hold, retry) = match outcome {
            BeforeDeleteOutcome::Proceed => {
                state.delete_cleared = true;
                state.hold = None;
                return true;
            }
            BeforeDeleteOutcome::Requeue(ms) => (Hold::DeleteWaiting, Some(requeue_delay(ms))),
            BeforeDeleteOutcome::Fail(why) => (Hold::DeleteFailed(why), None),
        };
        let (reason, message) = hold.describe();
        tracing::info!(reason, message = %message, "a reconcile hook holds the delete back");
        state.hold = Some(hold);
        self.refresh_status(id).await;
        self.schedule_retry_in(id, retry);
        false
    }

    /// Runs the consumer's status-feedback plugins on every object of the bundle seen in the
    /// cluster, keeping each answer with its object for the status.
    pub(super) async fn run_feedback_plugins(&mut self, id: &str) {
        let Some(state) = self.bundles.get(id) else { return };
        let subject = self.subject_for(id, state.version);
        let runtime = self
            .runtime_for(World::StatusFeedback)
            .filter(|runtime| !state.deleting && !runtime.steps_for(World::StatusFeedback, &subject).is_empty());
        let mut answers = vec![None; state.objects.len()];
        if let Some(runtime) = runtime {
            let present: Vec<(usize, Value, Value)> = state
                .objects
                .iter()
                .zip(&state.spec.manifests)
                .enumerate()
                .filter_map(|(i, (object, plan))| match &object.live {
                    Live::Present(live) => Some((i, live.clone(), plan.manifest.clone())),
                    _ => None,
                })
                .collect();
            for (i, live, desired) in present {
                let answer = runtime.status_feedback(subject.clone(), live, desired).await;
                answers[i] = Some(plugin_feedback(answer, self.value_cap));
            }
        }
        if let Some(state) = self.bundles.get_mut(id) {
            for (object, answer) in state.objects.iter_mut().zip(answers) {
                object.plugin = answer;
            }
        }
    }
}

/// The runtime's merged report as the status shows it.
pub(super) fn plugin_feedback(answer: Result<Report, PluginFailure>, cap: usize) -> PluginFeedback {
    let report = match answer {
        Ok(report) => report,
        Err(failure) => return PluginFeedback::Failed(failure.to_string()),
    };
    let values = report
        .values
        .into_iter()
        .map(|v| {
            let value = match v.value {
                FeedbackValue::Integer(i) => PluginValue::Integer(i),
                FeedbackValue::Boolean(b) => PluginValue::Boolean(b),
                FeedbackValue::Text(t) => PluginValue::Text(t),
                FeedbackValue::JsonRaw(raw) => PluginValue::JsonRaw(raw),
            };
            (v.name, status::plugin_value(value, cap))
        })
        .collect();
    let health = report.health.map(|h| {
        let state = match h.state {
            HealthState::Healthy => PluginHealth::Healthy,
            HealthState::Progressing => PluginHealth::Progressing,
            HealthState::Degraded => PluginHealth::Degraded,
            HealthState::Failed => PluginHealth::Failed,
            HealthState::Unknown => PluginHealth::Unknown,
        };
        (state, h.message)
    });
    PluginFeedback::Report { values, health }
}
