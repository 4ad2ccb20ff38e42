//! The bodies the creates send: manifests padded to a size, consumers to spread them over.

use crate::*;

/// A Deployment like the ones Maestro ships, padded with annotations to exactly `target` bytes
/// of compact JSON (or left as is when it is already larger). The name has a fixed width, so
/// every manifest of a run has the same size.
pub(crate) fn padded_manifest(name: &str, target: usize) -> Value {
    let mut manifest = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"app": "bench", "app.kubernetes.io/name": "bench", "app.kubernetes.io/part-of": "maestro-bench"},
            "annotations": {},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": {
                "metadata": {"labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "web", "image": "quay.io/nginx/nginx-unprivileged:1.27", "ports": [{"containerPort": 8080}]}]},
            },
        },
    });
    // Annotations start as `{}`; the rest of the manifest does not change while they grow.
    let others = json_len(&manifest).saturating_sub(2);
    if let Some(Value::Object(annotations)) = manifest.pointer_mut("/metadata/annotations") {
        pad_annotations(annotations, target.saturating_sub(others));
    }
    manifest
}

/// Fills `annotations` (starting empty) with `bench.maestro.io/pad-N` entries until the object
/// takes `target` bytes as compact JSON. Values are ASCII, so each character adds one byte.
pub(crate) fn pad_annotations(annotations: &mut Map<String, Value>, target: usize) {
    let mut index = 0;
    loop {
        let len = json_len(&Value::Object(annotations.clone()));
        if len >= target {
            return;
        }
        let key = format!("bench.maestro.io/pad-{index}");
        annotations.insert(key.clone(), Value::String(String::new()));
        let with_key = json_len(&Value::Object(annotations.clone()));
        if with_key > target {
            // No room for another entry: lengthen the last one instead, if there is one.
            annotations.remove(&key);
            if let Some((_, Value::String(last))) = annotations.iter_mut().next_back() {
                last.push_str(&"x".repeat(target - len));
            }
            return;
        }
        let fill = (target - with_key).min(PAD_CHUNK);
        annotations.insert(key, Value::String("x".repeat(fill)));
        index += 1;
    }
}

/// Bytes of compact JSON, as the hub measures manifests and as they travel.
pub(crate) fn json_len(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(0, |bytes| bytes.len())
}

/// The consumer names of a run; resources and bundles go to them in turn.
pub(crate) fn consumer_names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("bench-consumer-{i:03}")).collect()
}

/// Every create request body, built before the clock starts so the client's own JSON work is
/// not measured as the hub's.
pub(crate) fn create_bodies(args: &BenchArgs, consumers: &[String]) -> anyhow::Result<Vec<Bytes>> {
    let template = padded_manifest("bench-000000", args.payload_bytes);
    (0..args.creates)
        .map(|i| {
            let mut manifest = template.clone();
            if let Some(name) = manifest.pointer_mut("/metadata/name") {
                *name = Value::String(format!("bench-{i:06}"));
            }
            let consumer = &consumers[i % consumers.len()];
            let body = serde_json::to_vec(&json!({"consumer_name": consumer, "manifest": manifest}))?;
            Ok(Bytes::from(body))
        })
        .collect()
}
