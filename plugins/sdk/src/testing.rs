//! Run a plugin natively in unit tests, through the same steps its component takes.
//!
//! Each function serializes its arguments to the JSON text the host sends, then runs the
//! adapter the export macro uses, so settings and manifests parse exactly as in the hub or the
//! agent. Only the WebAssembly boundary itself is skipped; `maestro plugin run` covers that.
//!
//! ```ignore
//! use maestro_plugin::testing;
//! let verdict = testing::validate::<MyPlugin>(&json!({"kind": "Pod", ...}), &json!({}));
//! assert!(verdict.is_allow());
//! ```

use serde_json::Value;

use crate::bindings::reconcile_hook::exports::maestro::plugin::hooks as wit_hooks;
use crate::hooks::wire_bundle;
#[cfg(not(target_arch = "wasm32"))]
use crate::log::Level;
use crate::{
    Applied, BeforeApply, BeforeDelete, Bundle, Codec, Context, Manifest, Operation, ReconcileHook, Report,
    StatusFeedback, Validator, Verdict,
};

/// A context for consumer `cluster1`, no labels, clock at 0.
pub fn context() -> Context {
    Context::for_consumer("cluster1")
}

/// Validates `manifest` for a create, as consumer `cluster1`.
pub fn validate<P: Validator>(manifest: &Value, settings: &Value) -> Verdict {
    validate_with::<P>(context(), Operation::Create, manifest, settings)
}

pub fn validate_with<P: Validator>(ctx: Context, op: Operation, manifest: &Value, settings: &Value) -> Verdict {
    crate::validator::run::<P>(ctx, op, &manifest.to_string(), &settings.to_string())
}

/// What the host would hear from `validate-settings` for a policy with these settings.
pub fn validator_settings<P: Validator>(settings: &Value) -> Result<(), String> {
    crate::validator::run_validate_settings::<P>(&settings.to_string())
}

pub fn status<P: StatusFeedback>(live: &Value, desired: &Value, settings: &Value) -> Result<Report, String> {
    status_with::<P>(context(), live, desired, settings)
}

pub fn status_with<P: StatusFeedback>(
    ctx: Context,
    live: &Value,
    desired: &Value,
    settings: &Value,
) -> Result<Report, String> {
    crate::feedback::run::<P>(ctx, &live.to_string(), &desired.to_string(), &settings.to_string())
}

pub fn feedback_settings<P: StatusFeedback>(settings: &Value) -> Result<(), String> {
    crate::feedback::run_validate_settings::<P>(&settings.to_string())
}

pub fn encode<P: Codec>(data: &[u8], settings: &Value) -> Result<Vec<u8>, String> {
    crate::codec::run_encode::<P>(context(), data.to_vec(), &settings.to_string())
}

pub fn decode<P: Codec>(data: &[u8], settings: &Value) -> Result<Vec<u8>, String> {
    crate::codec::run_decode::<P>(context(), data.to_vec(), &settings.to_string())
}

pub fn codec_settings<P: Codec>(settings: &Value) -> Result<(), String> {
    crate::codec::run_validate_settings::<P>(&settings.to_string())
}

/// A bundle of these manifests, written at `updated_unix_ms`.
pub fn bundle(manifests: &[Value], updated_unix_ms: i64) -> Bundle {
    Bundle { manifests: manifests.iter().cloned().map(Manifest).collect(), updated_unix_ms }
}

pub fn before_apply<P: ReconcileHook>(ctx: Context, bundle: &Bundle, settings: &Value) -> BeforeApply {
    crate::hooks::run_before_apply::<P>(ctx, wire_bundle(bundle), &settings.to_string())
}

pub fn after_apply<P: ReconcileHook>(
    ctx: Context,
    bundle: &Bundle,
    results: Vec<Applied>,
    settings: &Value,
) -> Result<(), String> {
    crate::hooks::run_after_apply::<P>(ctx, wire_bundle(bundle), results, &settings.to_string())
}

pub fn before_delete<P: ReconcileHook>(ctx: Context, bundle: &Bundle, settings: &Value) -> BeforeDelete {
    crate::hooks::run_before_delete::<P>(ctx, wire_bundle(bundle), &settings.to_string())
}

pub fn hook_settings<P: ReconcileHook>(settings: &Value) -> Result<(), String> {
    crate::hooks::run_validate_settings::<P>(&settings.to_string())
}

/// The host's shape of a bundle, for tests that drive the generated types directly.
pub fn wire(bundle: &Bundle) -> wit_hooks::Bundle {
    wire_bundle(bundle)
}

/// Log lines this thread's plugin calls wrote since the last call.
#[cfg(not(target_arch = "wasm32"))]
pub fn take_logs() -> Vec<(Level, String)> {
    crate::log::imp::take()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;
    use crate::Violations;

    struct MaxReplicas;

    #[derive(Deserialize)]
    struct Limit {
        max: i64,
    }

    impl Validator for MaxReplicas {
        type Settings = Limit;

        fn validate_settings(settings: &Limit) -> Result<(), String> {
            if settings.max < 1 { Err("max must be at least 1".into()) } else { Ok(()) }
        }

        fn validate(_: &Context, _: Operation, manifest: &Manifest, settings: &Limit) -> Verdict {
            let mut violations = Violations::new();
            if manifest.pointer("/spec/replicas").and_then(Value::as_i64).is_some_and(|n| n > settings.max) {
                crate::log::info("too many replicas");
                violations.add("spec.replicas", format!("at most {} replicas", settings.max));
            }
            violations.into_verdict()
        }
    }

    #[test]
    fn the_harness_runs_a_validator_with_settings_as_the_host_would() {
        let manifest = json!({"kind": "Deployment", "spec": {"replicas": 5}});
        let verdict = validate::<MaxReplicas>(&manifest, &json!({"max": 3}));
        assert_eq!(verdict.violations()[0].path, "spec.replicas");
        assert_eq!(take_logs(), [(Level::Info, "too many replicas".to_string())]);
        assert!(validate::<MaxReplicas>(&manifest, &json!({"max": 5})).is_allow());
    }

    #[test]
    fn settings_that_do_not_parse_or_check_are_refused() {
        assert!(validator_settings::<MaxReplicas>(&json!({"max": 0})).unwrap_err().contains("at least 1"));
        assert!(validator_settings::<MaxReplicas>(&json!({})).unwrap_err().contains("max"));
        let verdict = validate::<MaxReplicas>(&json!({"kind": "Pod"}), &json!({"max": "x"}));
        assert_eq!(verdict.violations()[0].path, "settings", "a validator fails closed");
    }
}
