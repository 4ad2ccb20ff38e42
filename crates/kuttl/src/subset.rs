//! kuttl's rule for "this object matches that expectation" (`internal/utils/subset.go`
//! `IsSubset`), with every difference listed rather than the first one only:
//!
//! - maps: every expected key must be present and match; keys the object has beyond them are
//!   ignored;
//! - arrays: the same length, and element by element in order (kuttl's rule, kuttl#76: an
//!   expected array is never a subset of a longer one);
//! - scalars: equal after JSON decoding, types included (`"1"` does not match `1`).

use std::fmt;

use serde_json::Value;

/// One place where the object differs from the expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Where, as `spec.containers[0].image`.
    pub path: String,
    pub expected: String,
    /// What the object has there; `None` when the field is missing.
    pub actual: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.actual {
            Some(actual) => write!(f, "{}: expected {}, got {}", self.path, self.expected, actual),
            None => write!(f, "{}: expected {}, missing", self.path, self.expected),
        }
    }
}

/// Every difference between `expected` and `actual` under kuttl's rule; empty when `expected`
/// is a subset of `actual`.
pub fn differences(expected: &Value, actual: &Value) -> Vec<Difference> {
    let mut found = Vec::new();
    compare(expected, actual, &mut String::new(), &mut found);
    found
}

/// Whether `expected` is a subset of `actual` under kuttl's rule.
pub fn is_subset(expected: &Value, actual: &Value) -> bool {
    differences(expected, actual).is_empty()
}

fn compare(expected: &Value, actual: &Value, path: &mut String, found: &mut Vec<Difference>) {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let mark = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                match have.get(key) {
                    Some(actual) => compare(value, actual, path, found),
                    None => found.push(Difference { path: path.clone(), expected: short(value), actual: None }),
                }
                path.truncate(mark);
            }
        }
        (Value::Array(want), Value::Array(have)) if want.len() != have.len() => found.push(Difference {
            path: shown(path),
            expected: format!("{} items", want.len()),
            actual: Some(format!("{} items", have.len())),
        }),
        (Value::Array(want), Value::Array(have)) => {
            for (index, (value, actual)) in want.iter().zip(have).enumerate() {
                let mark = path.len();
                path.push_str(&format!("[{index}]"));
                compare(value, actual, path, found);
                path.truncate(mark);
            }
        }
        (want, have) if want == have => {}
        (want, have) => found.push(Difference { path: shown(path), expected: short(want), actual: Some(short(have)) }),
    }
}

fn shown(path: &str) -> String {
    if path.is_empty() { "(the object)".to_string() } else { path.to_string() }
}

/// A value as JSON, cut short: differences name fields, they do not dump objects.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 80 {
        return text;
    }
    let cut: String = text.chars().take(77).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn maps_match_on_the_expected_keys_only() {
        let actual = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"replicas": 3}});
        assert!(is_subset(&json!({"spec": {"replicas": 3}}), &actual));
        assert!(is_subset(&json!({"metadata": {"labels": {}}}), &actual));
        let found = differences(&json!({"spec": {"replicas": 2, "paused": true}}), &actual);
        assert_eq!(
            found.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["spec.replicas: expected 2, got 3", "spec.paused: expected true, missing"]
        );
    }

    #[test]
    fn arrays_need_the_same_length_and_match_in_order() {
        let actual = json!({"ports": [{"port": 80, "name": "http"}, {"port": 443}]});
        assert!(is_subset(&json!({"ports": [{"port": 80}, {}]}), &actual));
        let shorter = differences(&json!({"ports": [{"port": 80}]}), &actual);
        assert_eq!(shorter[0].to_string(), "ports: expected 1 items, got 2 items");
        let swapped = differences(&json!({"ports": [{"port": 443}, {"port": 80}]}), &actual);
        assert_eq!(swapped.len(), 2);
        assert_eq!(swapped[0].path, "ports[0].port");
    }

    #[test]
    fn scalars_compare_with_their_types() {
        assert!(!is_subset(&json!({"n": "1"}), &json!({"n": 1})));
        assert!(!is_subset(&json!({"n": 1}), &json!({"n": "1"})));
        assert!(is_subset(&json!({"n": null}), &json!({"n": null})));
        assert!(!is_subset(&json!({"n": null}), &json!({})));
        assert!(!is_subset(&json!({"cpu": "0.3"}), &json!({"cpu": "300m"})), "no quantity arithmetic");
    }

    #[test]
    fn a_long_value_is_cut_in_the_message() {
        let long = "x".repeat(200);
        let found = differences(&json!({"a": long}), &json!({"a": "y"}));
        assert!(found[0].expected.len() < 90 && found[0].expected.ends_with("..."));
    }
}
