//! Test validator: refuses container images without a tag or with a forbidden tag, and
//! (optionally) manifests without a `team` label. Every violation names its field path.
//! Settings: `{"forbidden_tags": ["latest"], "require_team_label": false}`.

wit_bindgen::generate!({ path: "../../../wit", world: "validator" });

use exports::maestro::plugin::validate::{Guest, Verdict};
use maestro::plugin::host::log;
use maestro::plugin::types::{Context, LogLevel, Operation, Violation};
use serde_json::Value;

struct ImagePolicy;

struct Settings {
    forbidden_tags: Vec<String>,
    require_team_label: bool,
}

fn parse_settings(text: &str) -> Result<Settings, String> {
    let value: Value = serde_json::from_str(text).map_err(|err| format!("settings are not JSON: {err}"))?;
    let Value::Object(map) = value else { return Err("settings must be a JSON object".into()) };
    let mut settings = Settings { forbidden_tags: vec!["latest".into()], require_team_label: false };
    for (key, value) in map {
        match key.as_str() {
            "forbidden_tags" => {
                let Some(tags) = value.as_array() else {
                    return Err("forbidden_tags must be a list of strings".into());
                };
                settings.forbidden_tags = tags
                    .iter()
                    .map(|t| {
                        t.as_str().map(str::to_string).ok_or("forbidden_tags must be a list of strings".to_string())
                    })
                    .collect::<Result<_, _>>()?;
            }
            "require_team_label" => {
                settings.require_team_label = value.as_bool().ok_or("require_team_label must be a boolean")?;
            }
            other => return Err(format!("unknown setting {other:?}; known: forbidden_tags, require_team_label")),
        }
    }
    Ok(settings)
}

fn containers(manifest: &Value) -> Vec<(String, &Value)> {
    let mut found = Vec::new();
    for (prefix, pointer) in
        [("spec.template.spec.containers", "/spec/template/spec/containers"), ("spec.containers", "/spec/containers")]
    {
        if let Some(list) = manifest.pointer(pointer).and_then(Value::as_array) {
            for (i, c) in list.iter().enumerate() {
                found.push((format!("{prefix}[{i}].image"), c));
            }
        }
    }
    found
}

impl Guest for ImagePolicy {
    fn validate_settings(settings: String) -> Result<(), String> {
        parse_settings(&settings).map(|_| ())
    }

    fn validate(ctx: Context, op: Operation, manifest: String, settings: String) -> Verdict {
        if matches!(op, Operation::Delete) {
            return Verdict::Allow;
        }
        let settings = match parse_settings(&settings) {
            Ok(s) => s,
            Err(message) => return Verdict::Deny(vec![Violation { path: "settings".into(), message }]),
        };
        let manifest: Value = match serde_json::from_str(&manifest) {
            Ok(m) => m,
            Err(err) => return Verdict::Deny(vec![Violation { path: "".into(), message: format!("not JSON: {err}") }]),
        };
        let mut violations = Vec::new();
        for (path, container) in containers(&manifest) {
            let image = container.get("image").and_then(Value::as_str).unwrap_or("");
            let name = image.rsplit('/').next().unwrap_or(image);
            match name.split_once(':') {
                None => violations.push(Violation { path, message: format!("image {image:?} has no tag") }),
                Some((_, tag)) if settings.forbidden_tags.iter().any(|t| t == tag) => {
                    violations.push(Violation { path, message: format!("image tag {tag:?} is not allowed") })
                }
                Some(_) => {}
            }
        }
        if settings.require_team_label && manifest.pointer("/metadata/labels/team").is_none() {
            violations
                .push(Violation { path: "metadata.labels.team".into(), message: "a team label is required".into() });
        }
        if violations.is_empty() {
            Verdict::Allow
        } else {
            log(LogLevel::Info, &format!("denied a manifest for {}", ctx.consumer));
            Verdict::Deny(violations)
        }
    }
}

export!(ImagePolicy);
