//! {{name}}: a Maestro status-feedback plugin. It reports an object's `Ready` condition as
//! health. Edit `status` to make it yours.

use maestro_plugin::feedback::condition;
use maestro_plugin::prelude::*;

pub struct {{Type}};

impl StatusFeedback for {{Type}} {
    type Settings = ();

    fn status(_ctx: &Context, live: &Manifest, _desired: &Manifest, _settings: &()) -> Result<Report, String> {
        let Some(ready) = condition(live, "Ready") else { return Ok(Report::new()) };
        let state = if ready.is_true() { HealthState::Healthy } else { HealthState::Progressing };
        Ok(Report::new().boolean("ready", ready.is_true()).health(state, ready.message))
    }
}

maestro_plugin::export_status_feedback!({{Type}});

#[cfg(test)]
mod tests {
    use maestro_plugin::testing;

    use super::*;

    #[test]
    fn a_ready_object_is_healthy() {
        let live = json!({"kind": "Widget", "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let report = testing::status::<{{Type}}>(&live, &json!({}), &json!(null)).unwrap();
        assert_eq!(report.state(), Some(HealthState::Healthy));
    }
}
