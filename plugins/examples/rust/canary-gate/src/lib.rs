//! Reconcile hook: clusters labelled as canaries apply a new bundle version at once; every
//! other cluster waits until the version has baked on the canaries for a while.
//!
//! The bake time counts from when the hub wrote the version (`updated-unix-ms`), so no
//! coordination between agents is needed.

use maestro_plugin::prelude::*;

pub struct CanaryGate;

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The consumer label marking canaries, and its value.
    pub canary_label: String,
    pub canary_value: String,
    /// How long other clusters wait after the version was written.
    pub bake_minutes: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { canary_label: "maestro.io/canary".into(), canary_value: "true".into(), bake_minutes: 30 }
    }
}

impl ReconcileHook for CanaryGate {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> Result<(), String> {
        if settings.canary_label.is_empty() { Err("canary_label must not be empty".into()) } else { Ok(()) }
    }

    fn before_apply(ctx: &Context, bundle: Bundle, settings: &Settings) -> BeforeApply {
        if ctx.label(&settings.canary_label) == Some(settings.canary_value.as_str()) {
            return BeforeApply::Proceed(bundle.manifests);
        }
        let ready_at = bundle.updated_unix_ms + i64::from(settings.bake_minutes) * 60_000;
        let wait = ready_at - ctx.now_unix_ms;
        if wait <= 0 {
            return BeforeApply::Proceed(bundle.manifests);
        }
        BeforeApply::Requeue(wait.min(i64::from(u32::MAX)) as u32)
    }
}

maestro_plugin::export_reconcile_hook!(CanaryGate);

#[cfg(test)]
mod tests {
    use maestro_plugin::testing;

    use super::*;

    const WRITTEN: i64 = 1_700_000_000_000;
    const MINUTE: i64 = 60_000;

    fn bundle() -> Bundle {
        testing::bundle(&[json!({"kind": "ConfigMap", "metadata": {"name": "c"}})], WRITTEN)
    }

    #[test]
    fn a_canary_applies_a_fresh_version_at_once() {
        let canary = testing::context().with_label("maestro.io/canary", "true").at_unix_ms(WRITTEN + MINUTE);
        assert_eq!(
            testing::before_apply::<CanaryGate>(canary, &bundle(), &json!({})),
            BeforeApply::Proceed(bundle().manifests)
        );
    }

    #[test]
    fn other_clusters_wait_out_the_bake_time_then_apply() {
        let settings = json!({"bake_minutes": 10});
        let early = testing::context().at_unix_ms(WRITTEN + 4 * MINUTE);
        assert_eq!(
            testing::before_apply::<CanaryGate>(early, &bundle(), &settings),
            BeforeApply::Requeue(6 * MINUTE as u32)
        );
        let late = testing::context().with_label("maestro.io/canary", "false").at_unix_ms(WRITTEN + 10 * MINUTE);
        assert!(matches!(testing::before_apply::<CanaryGate>(late, &bundle(), &settings), BeforeApply::Proceed(_)));
    }

    #[test]
    fn the_canary_label_comes_from_settings() {
        let settings = json!({"canary_label": "ring", "canary_value": "0", "bake_minutes": 60});
        let ring0 = testing::context().with_label("ring", "0").at_unix_ms(WRITTEN);
        assert!(matches!(testing::before_apply::<CanaryGate>(ring0, &bundle(), &settings), BeforeApply::Proceed(_)));
        assert!(testing::hook_settings::<CanaryGate>(&json!({"canary_label": ""})).is_err());
    }
}
