//! Validators (world `validator`): denials become violations, mutations feed the next step.

use crate::*;

impl PluginRuntime {
    pub fn validate_blocking(&self, subject: &Subject, op: Operation, manifests: Vec<Value>) -> ValidationOutcome {
        let mut outcome = ValidationOutcome { manifests, violations: Vec::new(), mutated: false };
        let steps = self.steps_for(World::Validator, subject);
        if steps.is_empty() {
            return outcome;
        }
        let ctx = subject.context();
        for step in &steps {
            for i in 0..outcome.manifests.len() {
                let text = outcome.manifests[i].to_string();
                let result = match calls::check_len("the manifest", text.len(), self.config.max_arg_bytes) {
                    Err(err) => Err(err),
                    Ok(()) => {
                        self.run_step(step, World::Validator, subject, verdict_label, |engine, loaded, bounds| {
                            let called = calls::validate(engine, loaded, &ctx, op, &text, &step.settings, bounds);
                            Called { result: called.result.and_then(parse_mutation), memory_peak: called.memory_peak }
                        })
                    }
                };
                apply_verdict(step, i, result, &mut outcome);
            }
        }
        outcome
    }
}

fn verdict_label(verdict: &ParsedVerdict) -> &'static str {
    match verdict {
        ParsedVerdict::Allow => "allow",
        ParsedVerdict::Deny(_) => "deny",
        ParsedVerdict::Mutate(_) => "mutate",
    }
}

/// A verdict whose mutation was checked to be a JSON object.
enum ParsedVerdict {
    Allow,
    Deny(Vec<types::PluginViolation>),
    Mutate(Value),
}

fn parse_mutation(verdict: types::Verdict) -> Result<ParsedVerdict, CallError> {
    Ok(match verdict {
        types::Verdict::Allow => ParsedVerdict::Allow,
        types::Verdict::Deny(violations) => ParsedVerdict::Deny(violations),
        types::Verdict::Mutate(json) => match serde_json::from_str::<Value>(&json) {
            Ok(value @ Value::Object(_)) => ParsedVerdict::Mutate(value),
            Ok(_) => return Err(CallError::BadResult("a mutation that is not a JSON object".into())),
            Err(err) => return Err(CallError::BadResult(format!("a mutation that is not JSON ({err})"))),
        },
    })
}

/// `manifests[i]` joined with a plugin's path (`spec.x`, `[0].y` or empty).
fn field_path(index: usize, path: &str) -> String {
    match path {
        "" => format!("manifests[{index}]"),
        p if p.starts_with('[') => format!("manifests[{index}]{p}"),
        p => format!("manifests[{index}].{p}"),
    }
}

fn apply_verdict(
    step: &ResolvedStep,
    index: usize,
    result: Result<ParsedVerdict, CallError>,
    out: &mut ValidationOutcome,
) {
    let plugin = &step.plugin;
    let monitor = step.failure_mode == FailureMode::Monitor;
    match result {
        Ok(ParsedVerdict::Allow) => {}
        Ok(ParsedVerdict::Deny(violations)) if monitor => {
            for v in violations {
                tracing::warn!(plugin = %plugin, policy = %step.policy, field = %field_path(index, &v.path), reason = %v.message,
                    "monitor: the validator would deny");
            }
        }
        Ok(ParsedVerdict::Deny(violations)) => {
            out.violations.extend(violations.into_iter().map(|v| Violation {
                field: field_path(index, &v.path),
                message: format!("plugin '{plugin}': {}", v.message),
            }));
        }
        Ok(ParsedVerdict::Mutate(_)) if monitor => {
            tracing::info!(plugin = %plugin, policy = %step.policy, "monitor: the validator would change manifest {index}");
        }
        Ok(ParsedVerdict::Mutate(value)) => {
            out.manifests[index] = value;
            out.mutated = true;
        }
        Err(err) if step.failure_mode == FailureMode::FailClosed => out.violations.push(Violation {
            field: format!("manifests[{index}]"),
            message: format!("plugin '{plugin}' {err}; the policy '{}' is fail-closed", step.policy),
        }),
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violation_paths_are_rooted_at_the_manifest() {
        assert_eq!(field_path(0, ""), "manifests[0]");
        assert_eq!(field_path(2, "spec.replicas"), "manifests[2].spec.replicas");
        assert_eq!(field_path(1, "[0].x"), "manifests[1][0].x");
    }

    #[test]
    fn a_mutation_must_be_a_json_object() {
        assert!(matches!(parse_mutation(types::Verdict::Mutate("{\"a\":1}".into())), Ok(ParsedVerdict::Mutate(_))));
        assert!(matches!(parse_mutation(types::Verdict::Mutate("{not json".into())), Err(CallError::BadResult(_))));
        assert!(matches!(parse_mutation(types::Verdict::Mutate("[1]".into())), Err(CallError::BadResult(_))));
    }
}
