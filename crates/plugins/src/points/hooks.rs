//! Reconcile hooks (world `reconcile-hook`): before-apply, after-apply, before-delete.

use crate::*;

impl PluginRuntime {
    fn hook_step(
        &self,
        step: &ResolvedStep,
        subject: &Subject,
        ctx: &Context,
        which: Hook<'_>,
        bundle: &HookBundle,
    ) -> Result<HookAnswer, CallError> {
        let size: usize = bundle.manifests.iter().map(String::len).sum();
        calls::check_len("the bundle", size, self.config.max_arg_bytes)?;
        self.run_step(step, World::ReconcileHook, subject, hook_label, |engine, loaded, bounds| {
            calls::hook(engine, loaded, ctx, which, bundle, &step.settings, bounds)
        })
    }

    /// Runs the before-apply hooks in order: each may change the manifests for the next, or
    /// stop with skip, requeue or fail. A fail-closed hook that fails makes the outcome `fail`.
    pub fn before_apply_blocking(&self, subject: &Subject, bundle: HookBundle) -> BeforeApplyOutcome {
        let ctx = subject.context();
        let mut bundle = bundle;
        for step in self.steps_for(World::ReconcileHook, subject) {
            match (self.hook_step(&step, subject, &ctx, Hook::BeforeApply, &bundle), step.failure_mode) {
                (Ok(_), FailureMode::Monitor) => {}
                (Ok(HookAnswer::BeforeApply(BeforeApplyOutcome::Proceed(manifests))), _) => {
                    bundle.manifests = manifests
                }
                (Ok(HookAnswer::BeforeApply(stop)), _) => return stop,
                (Ok(_), _) => {}
                (Err(err), FailureMode::FailClosed) => {
                    return BeforeApplyOutcome::Fail(format!("plugin '{}' {err}", step.plugin));
                }
                (Err(_), _) => {}
            }
        }
        BeforeApplyOutcome::Proceed(bundle.manifests)
    }

    /// Runs the after-apply hooks; the errors they report (and fail-closed failures), joined.
    pub fn after_apply_blocking(
        &self,
        subject: &Subject,
        bundle: &HookBundle,
        results: &[Applied],
    ) -> Result<(), String> {
        let ctx = subject.context();
        let mut errors = Vec::new();
        for step in self.steps_for(World::ReconcileHook, subject) {
            match (self.hook_step(&step, subject, &ctx, Hook::AfterApply(results), bundle), step.failure_mode) {
                (_, FailureMode::Monitor) => {}
                (Ok(HookAnswer::AfterApply(Err(message))), _) => {
                    errors.push(format!("plugin '{}': {message}", step.plugin))
                }
                (Ok(_), _) => {}
                (Err(err), FailureMode::FailClosed) => errors.push(format!("plugin '{}' {err}", step.plugin)),
                (Err(_), _) => {}
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }

    /// Runs the before-delete hooks: the first that does not proceed decides.
    pub fn before_delete_blocking(&self, subject: &Subject, bundle: &HookBundle) -> BeforeDeleteOutcome {
        let ctx = subject.context();
        for step in self.steps_for(World::ReconcileHook, subject) {
            match (self.hook_step(&step, subject, &ctx, Hook::BeforeDelete, bundle), step.failure_mode) {
                (Ok(_), FailureMode::Monitor) => {}
                (Ok(HookAnswer::BeforeDelete(BeforeDeleteOutcome::Proceed)), _) => {}
                (Ok(HookAnswer::BeforeDelete(stop)), _) => return stop,
                (Ok(_), _) => {}
                (Err(err), FailureMode::FailClosed) => {
                    return BeforeDeleteOutcome::Fail(format!("plugin '{}' {err}", step.plugin));
                }
                (Err(_), _) => {}
            }
        }
        BeforeDeleteOutcome::Proceed
    }
}

fn hook_label(answer: &HookAnswer) -> &'static str {
    match answer {
        HookAnswer::BeforeApply(BeforeApplyOutcome::Proceed(_)) => "proceed",
        HookAnswer::BeforeApply(BeforeApplyOutcome::Skip(_)) => "skip",
        HookAnswer::BeforeApply(BeforeApplyOutcome::Requeue(_)) => "requeue",
        HookAnswer::BeforeApply(BeforeApplyOutcome::Fail(_)) => "fail",
        HookAnswer::AfterApply(Ok(())) => "ok",
        HookAnswer::AfterApply(Err(_)) => "error",
        HookAnswer::BeforeDelete(BeforeDeleteOutcome::Proceed) => "proceed",
        HookAnswer::BeforeDelete(BeforeDeleteOutcome::Requeue(_)) => "requeue",
        HookAnswer::BeforeDelete(BeforeDeleteOutcome::Fail(_)) => "fail",
    }
}
