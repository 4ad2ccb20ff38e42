//! Status feedback (world `status-feedback`): values in order, the worst health.

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

fn health_rank(state: HealthState) -> u8 {
    match state {
        HealthState::Healthy => 0,
        HealthState::Unknown => 1,
        HealthState::Progressing => 2,
        HealthState::Degraded => 3,
        HealthState::Failed => 4,
    }
}

fn worst<H: HasState>(a: Option<H>, b: Option<H>) -> Option<H> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if health_rank(b.state()) > health_rank(a.state()) { b } else { a }),
        (a, b) => a.or(b),
    }
}

trait HasState {
    fn state(&self) -> HealthState;
}

impl HasState for bindings::feedback::exports::maestro::plugin::feedback::Health {
    fn state(&self) -> HealthState {
        self.state
    }
}
