//! Test reconcile hook. `before-apply`: asks to requeue while the consumer is labelled
//! `frozen=true`, skips an empty bundle, otherwise proceeds with each manifest labelled
//! `maestro.io/hooked=true`. `after-apply`: an error naming the first failed manifest.
//! `before-delete`: fails for a bundle with a manifest annotated `maestro.io/protect`.
//! Settings: `{"requeue_ms": N}` (optional, default 1000).

wit_bindgen::generate!({ path: "../../../wit", world: "reconcile-hook" });

use exports::maestro::plugin::hooks::{Applied, BeforeApplyOutcome, BeforeDeleteOutcome, Bundle, Guest};
use maestro::plugin::types::Context;
use serde_json::Value;

struct HooksBasic;

fn requeue_ms(settings: &str) -> Result<u32, String> {
    let value: Value = serde_json::from_str(settings).map_err(|err| format!("settings are not JSON: {err}"))?;
    match value.get("requeue_ms") {
        None => Ok(1000),
        Some(v) => v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or("requeue_ms must be a u32".into()),
    }
}

impl Guest for HooksBasic {
    fn validate_settings(settings: String) -> Result<(), String> {
        requeue_ms(&settings).map(|_| ())
    }

    fn before_apply(ctx: Context, bundle: Bundle, settings: String) -> BeforeApplyOutcome {
        if ctx.consumer_labels.iter().any(|(k, v)| k == "frozen" && v == "true") {
            return BeforeApplyOutcome::Requeue(requeue_ms(&settings).unwrap_or(1000));
        }
        if bundle.manifests.is_empty() {
            return BeforeApplyOutcome::Skip("empty bundle".into());
        }
        let mut out = Vec::with_capacity(bundle.manifests.len());
        for (i, text) in bundle.manifests.iter().enumerate() {
            let Ok(mut manifest) = serde_json::from_str::<Value>(text) else {
                return BeforeApplyOutcome::Fail(format!("manifest {i} is not JSON"));
            };
            if let Some(meta) = manifest.get_mut("metadata").and_then(Value::as_object_mut) {
                let labels = meta.entry("labels").or_insert_with(|| Value::Object(Default::default()));
                if let Some(labels) = labels.as_object_mut() {
                    labels.insert("maestro.io/hooked".into(), Value::String("true".into()));
                }
            }
            out.push(manifest.to_string());
        }
        BeforeApplyOutcome::Proceed(out)
    }

    fn after_apply(_ctx: Context, _bundle: Bundle, results: Vec<Applied>, _settings: String) -> Result<(), String> {
        match results.iter().find(|r| !r.ok) {
            Some(failed) => Err(format!("manifest {} failed: {}", failed.index, failed.message)),
            None => Ok(()),
        }
    }

    fn before_delete(_ctx: Context, bundle: Bundle, _settings: String) -> BeforeDeleteOutcome {
        let protected = bundle.manifests.iter().any(|text| {
            serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|m| m.pointer("/metadata/annotations/maestro.io~1protect").cloned())
                .is_some()
        });
        if protected { BeforeDeleteOutcome::Fail("bundle is protected".into()) } else { BeforeDeleteOutcome::Proceed }
    }
}

export!(HooksBasic);
