//! Status feedback (world `status-feedback`): values in order, the worst health.

use crate::types::Health;
use crate::*;

impl PluginRuntime {
    /// Runs the status-feedback plugins of the consumer's policies on a live object and merges
    /// their reports (values in order; the worst health). Fails only for fail-closed steps.
    pub fn status_feedback_blocking(
        &self,
        subject: &Subject,
        live: &Value,
        desired: &Value,
    ) -> Result<Report, PluginFailure> {
        let mut merged = Report { values: Vec::new(), health: None };
        let (live, desired) = (live.to_string(), desired.to_string());
        let ctx = subject.context();
        for step in self.steps_for(World::StatusFeedback, subject) {
            let result = calls::check_len("the live object", live.len() + desired.len(), self.config.max_arg_bytes)
                .and_then(|()| {
                    self.run_step(
                        &step,
                        World::StatusFeedback,
                        subject,
                        |_| "ok",
                        |engine, loaded, bounds| {
                            calls::status(engine, loaded, &ctx, &live, &desired, &step.settings, bounds)
                        },
                    )
                });
            match (result, step.failure_mode) {
                (Ok(_), FailureMode::Monitor) => {}
                (Ok(report), _) => {
                    merged.values.extend(report.values);
                    merged.health = worst(merged.health.take(), report.health);
                }
                (Err(error), FailureMode::FailClosed) => return Err(PluginFailure { plugin: step.plugin, error }),
                (Err(_), _) => {}
            }
        }
        Ok(merged)
    }
}

fn worst(a: Option<Health>, b: Option<Health>) -> Option<Health> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.state.rank() > a.state.rank() { b } else { a }),
        (a, b) => a.or(b),
    }
}
