//! Between [`crate::types`] and the generated bindings, at the call boundary only. Owned
//! conversions: the arguments are copied into the guest's memory anyway, so one more copy of
//! a context or a bundle costs nothing next to the call.

use crate::bindings::exports::maestro::plugin::validate as wit_validate;
use crate::bindings::feedback::exports::maestro::plugin::feedback as wit_feedback;
use crate::bindings::hooks::exports::maestro::plugin::hooks as wit_hooks;
use crate::bindings::maestro::plugin::types as wit;
use crate::types::*;

impl From<Operation> for wit::Operation {
    fn from(op: Operation) -> Self {
        match op {
            Operation::Create => Self::Create,
            Operation::Update => Self::Update,
            Operation::Delete => Self::Delete,
        }
    }
}

impl From<&Context> for wit::Context {
    fn from(ctx: &Context) -> Self {
        wit::Context {
            consumer: ctx.consumer.clone(),
            consumer_labels: ctx.consumer_labels.clone(),
            resource_id: ctx.resource_id.clone(),
            resource_version: ctx.resource_version,
            now_unix_ms: ctx.now_unix_ms,
        }
    }
}

impl From<wit_validate::Verdict> for Verdict {
    fn from(verdict: wit_validate::Verdict) -> Self {
        match verdict {
            wit_validate::Verdict::Allow => Verdict::Allow,
            wit_validate::Verdict::Mutate(json) => Verdict::Mutate(json),
            wit_validate::Verdict::Deny(violations) => Verdict::Deny(
                violations.into_iter().map(|v| PluginViolation { path: v.path, message: v.message }).collect(),
            ),
        }
    }
}

impl From<wit_feedback::Value> for Value {
    fn from(value: wit_feedback::Value) -> Self {
        match value {
            wit_feedback::Value::Integer(i) => Value::Integer(i),
            wit_feedback::Value::Boolean(b) => Value::Boolean(b),
            wit_feedback::Value::Text(text) => Value::Text(text),
            wit_feedback::Value::JsonRaw(raw) => Value::JsonRaw(raw),
        }
    }
}

impl From<wit_feedback::HealthState> for HealthState {
    fn from(state: wit_feedback::HealthState) -> Self {
        match state {
            wit_feedback::HealthState::Healthy => HealthState::Healthy,
            wit_feedback::HealthState::Progressing => HealthState::Progressing,
            wit_feedback::HealthState::Degraded => HealthState::Degraded,
            wit_feedback::HealthState::Failed => HealthState::Failed,
            wit_feedback::HealthState::Unknown => HealthState::Unknown,
        }
    }
}

impl From<wit_feedback::Report> for Report {
    fn from(report: wit_feedback::Report) -> Self {
        Report {
            values: report.values.into_iter().map(|v| FeedbackValue { name: v.name, value: v.value.into() }).collect(),
            health: report.health.map(|h| Health { state: h.state.into(), message: h.message }),
        }
    }
}

impl From<&HookBundle> for wit_hooks::Bundle {
    fn from(bundle: &HookBundle) -> Self {
        wit_hooks::Bundle { manifests: bundle.manifests.clone(), updated_unix_ms: bundle.updated_unix_ms }
    }
}

impl From<&Applied> for wit_hooks::Applied {
    fn from(applied: &Applied) -> Self {
        wit_hooks::Applied { index: applied.index, ok: applied.ok, message: applied.message.clone() }
    }
}

impl From<wit_hooks::BeforeApplyOutcome> for BeforeApplyOutcome {
    fn from(outcome: wit_hooks::BeforeApplyOutcome) -> Self {
        match outcome {
            wit_hooks::BeforeApplyOutcome::Proceed(manifests) => BeforeApplyOutcome::Proceed(manifests),
            wit_hooks::BeforeApplyOutcome::Skip(why) => BeforeApplyOutcome::Skip(why),
            wit_hooks::BeforeApplyOutcome::Requeue(ms) => BeforeApplyOutcome::Requeue(ms),
            wit_hooks::BeforeApplyOutcome::Fail(why) => BeforeApplyOutcome::Fail(why),
        }
    }
}

impl From<wit_hooks::BeforeDeleteOutcome> for BeforeDeleteOutcome {
    fn from(outcome: wit_hooks::BeforeDeleteOutcome) -> Self {
        match outcome {
            wit_hooks::BeforeDeleteOutcome::Proceed => BeforeDeleteOutcome::Proceed,
            wit_hooks::BeforeDeleteOutcome::Requeue(ms) => BeforeDeleteOutcome::Requeue(ms),
            wit_hooks::BeforeDeleteOutcome::Fail(why) => BeforeDeleteOutcome::Fail(why),
        }
    }
}
