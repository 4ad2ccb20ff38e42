//! The `status-feedback` world: report values and health from a live object on the agent.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bindings::status_feedback::exports::maestro::plugin::feedback as wit;
use crate::bindings::types;
use crate::{Context, Manifest, parse_settings};

/// A status-feedback plugin. Export it with [`crate::export_status_feedback!`].
pub trait StatusFeedback {
    type Settings: DeserializeOwned;

    fn validate_settings(_settings: &Self::Settings) -> Result<(), String> {
        Ok(())
    }

    /// `live` is the object as the API server returns it, `desired` the manifest sent.
    /// An error is reported as this plugin's failure; it never marks the resource failed.
    fn status(ctx: &Context, live: &Manifest, desired: &Manifest, settings: &Self::Settings) -> Result<Report, String>;
}

/// One feedback value.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedbackValue {
    Integer(i64),
    Boolean(bool),
    Text(String),
    Json(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    Healthy,
    Progressing,
    Degraded,
    Failed,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub state: HealthState,
    pub message: String,
}

/// What a status-feedback plugin reports: named values, and health if it has an opinion.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub values: Vec<(String, FeedbackValue)>,
    pub health: Option<Health>,
}

impl Report {
    pub fn new() -> Self {
        Report::default()
    }

    pub fn value(mut self, name: impl Into<String>, value: FeedbackValue) -> Self {
        self.values.push((name.into(), value));
        self
    }

    pub fn integer(self, name: impl Into<String>, value: i64) -> Self {
        self.value(name, FeedbackValue::Integer(value))
    }

    pub fn boolean(self, name: impl Into<String>, value: bool) -> Self {
        self.value(name, FeedbackValue::Boolean(value))
    }

    pub fn text(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.value(name, FeedbackValue::Text(value.into()))
    }

    pub fn json(self, name: impl Into<String>, value: Value) -> Self {
        self.value(name, FeedbackValue::Json(value))
    }

    pub fn health(mut self, state: HealthState, message: impl Into<String>) -> Self {
        self.health = Some(Health { state, message: message.into() });
        self
    }

    /// The value reported under `name`.
    pub fn get(&self, name: &str) -> Option<&FeedbackValue> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The health state reported, if any.
    pub fn state(&self) -> Option<HealthState> {
        self.health.as_ref().map(|h| h.state)
    }
}

/// One entry of `status.conditions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition<'a> {
    pub type_: &'a str,
    /// `True`, `False` or `Unknown`.
    pub status: &'a str,
    pub reason: &'a str,
    pub message: &'a str,
}

impl Condition<'_> {
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

/// Every well-formed entry of `status.conditions`.
pub fn conditions(object: &Value) -> Vec<Condition<'_>> {
    let items = object.pointer("/status/conditions").and_then(Value::as_array);
    items.into_iter().flatten().filter_map(condition_of).collect()
}

/// The condition of type `type_` (e.g. `Ready`), if the object reports it.
pub fn condition<'a>(object: &'a Value, type_: &str) -> Option<Condition<'a>> {
    conditions(object).into_iter().find(|c| c.type_ == type_)
}

fn condition_of(value: &Value) -> Option<Condition<'_>> {
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or("");
    let type_ = value.get("type")?.as_str()?;
    Some(Condition { type_, status: text("status"), reason: text("reason"), message: text("message") })
}

/// `status` as the component runs it.
pub fn run<P: StatusFeedback>(ctx: Context, live: &str, desired: &str, settings: &str) -> Result<Report, String> {
    let settings = parse_settings::<P::Settings>(settings)?;
    let live = Manifest::parse(live).map_err(|err| format!("live object: {err}"))?;
    let desired = Manifest::parse(desired).map_err(|err| format!("desired manifest: {err}"))?;
    P::status(&ctx, &live, &desired, &settings)
}

/// `validate-settings` as the component runs it.
pub fn run_validate_settings<P: StatusFeedback>(settings: &str) -> Result<(), String> {
    P::validate_settings(&parse_settings::<P::Settings>(settings)?)
}

#[doc(hidden)]
pub struct Export<P>(PhantomData<P>);

impl<P: StatusFeedback> wit::Guest for Export<P> {
    fn validate_settings(settings: String) -> Result<(), String> {
        run_validate_settings::<P>(&settings)
    }

    fn status(ctx: types::Context, live: String, desired: String, settings: String) -> Result<wit::Report, String> {
        let report = run::<P>(ctx.into(), &live, &desired, &settings)?;
        Ok(wit::Report {
            values: report
                .values
                .into_iter()
                .map(|(name, value)| wit::FeedbackValue { name, value: wit_value(value) })
                .collect(),
            health: report.health.map(|h| wit::Health { state: wit_state(h.state), message: h.message }),
        })
    }
}

fn wit_value(value: FeedbackValue) -> wit::Value {
    match value {
        FeedbackValue::Integer(v) => wit::Value::Integer(v),
        FeedbackValue::Boolean(v) => wit::Value::Boolean(v),
        FeedbackValue::Text(v) => wit::Value::Text(v),
        FeedbackValue::Json(v) => wit::Value::JsonRaw(v.to_string()),
    }
}

fn wit_state(state: HealthState) -> wit::HealthState {
    match state {
        HealthState::Healthy => wit::HealthState::Healthy,
        HealthState::Progressing => wit::HealthState::Progressing,
        HealthState::Degraded => wit::HealthState::Degraded,
        HealthState::Failed => wit::HealthState::Failed,
        HealthState::Unknown => wit::HealthState::Unknown,
    }
}

/// Exports a [`StatusFeedback`] as the component's `status-feedback` world:
/// `maestro_plugin::export_status_feedback!(MyPlugin);`
#[macro_export]
macro_rules! export_status_feedback {
    ($plugin:ty) => {
        #[doc(hidden)]
        type __MaestroFeedbackExport = $crate::feedback::Export<$plugin>;
        $crate::bindings::status_feedback::export!(__MaestroFeedbackExport with_types_in $crate::bindings::status_feedback);
    };
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn conditions_are_found_by_type() {
        let cert = json!({"status": {"conditions": [
            {"type": "Issuing", "status": "False"},
            {"type": "Ready", "status": "True", "reason": "Ready", "message": "certificate is up to date"}
        ]}});
        let ready = condition(&cert, "Ready").unwrap();
        assert!(ready.is_true());
        assert_eq!(ready.message, "certificate is up to date");
        assert!(!condition(&cert, "Issuing").unwrap().is_true());
        assert!(condition(&cert, "Missing").is_none());
        assert!(conditions(&json!({"status": {}})).is_empty());
    }
}
