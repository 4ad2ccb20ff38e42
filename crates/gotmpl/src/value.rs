//! The values a template sees, with the Go types they stand for.
//!
//! KUDO hands templates `map[string]interface{}` data: strings, and for `array`/`map`
//! parameters YAML decoded with JSON semantics (numbers are `float64`). Functions add Go's
//! `int`, `int64`, `bool` and slices. Which Go type a value has decides how it prints
//! (`3` for an int, `1e+06` for a float), how `eq` compares, and which function arguments it
//! may fill, so the variants keep it.

use std::collections::BTreeMap;

use crate::number;

/// A Go value as a template sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A nil `interface{}`: prints as `<no value>` in an action, `<nil>` inside fmt.
    Nil,
    Bool(bool),
    /// Go's `int`.
    Int(i64),
    /// Go's `int64` (what sprig's arithmetic returns).
    Int64(i64),
    Float(f64),
    String(String),
    List(Vec<Value>),
    /// `map[string]interface{}`: Go iterates and prints maps in key order.
    Map(BTreeMap<String, Value>),
}

/// Go's kinds as `eq`/`lt` group them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Int,
    Float,
    String,
    Other,
}

impl Value {
    /// The Go type's name, as Go's error messages print it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
        }
    }

    pub(crate) fn kind(&self) -> Kind {
        match self {
            Value::Bool(_) => Kind::Bool,
            Value::Int(_) | Value::Int64(_) => Kind::Int,
            Value::Float(_) => Kind::Float,
            Value::String(_) => Kind::String,
            _ => Kind::Other,
        }
    }

    /// Go template truth: false, zero numbers, empty strings and collections, and nil are false.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Int64(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// `fmt.Sprint(v)`: how Go prints the value with `%v`.
    pub fn to_go_string(&self) -> String {
        let mut out = String::new();
        self.write_go(&mut out);
        out
    }

    /// Appends `%v` of the value.
    pub(crate) fn write_go(&self, out: &mut String) {
        match self {
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) | Value::Int64(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&number::go_float(*f)),
            Value::String(s) => out.push_str(s),
            Value::List(items) => {
                out.push('[');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(' ');
                    }
                    item.write_go(out);
                }
                out.push(']');
            }
            Value::Map(map) => {
                out.push_str("map[");
                for (n, (key, item)) in map.iter().enumerate() {
                    if n > 0 {
                        out.push(' ');
                    }
                    out.push_str(key);
                    out.push(':');
                    item.write_go(out);
                }
                out.push(']');
            }
        }
    }

    /// A value from JSON, with JSON's numbers as Go's `encoding/json` decodes them: `float64`.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => Value::List(items.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(map) => {
                Value::Map(map.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect())
            }
        }
    }

    /// A value from YAML as `sigs.k8s.io/yaml` decodes it (YAML to JSON, then JSON): numbers
    /// are `float64`, keys are strings.
    pub fn from_yaml(yaml: &serde_yaml::Value) -> Value {
        match yaml {
            serde_yaml::Value::Null => Value::Nil,
            serde_yaml::Value::Bool(b) => Value::Bool(*b),
            serde_yaml::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            serde_yaml::Value::String(s) => Value::String(s.clone()),
            serde_yaml::Value::Sequence(items) => Value::List(items.iter().map(Value::from_yaml).collect()),
            serde_yaml::Value::Mapping(map) => {
                Value::Map(map.iter().map(|(k, v)| (yaml_key(k), Value::from_yaml(v))).collect())
            }
            serde_yaml::Value::Tagged(tagged) => Value::from_yaml(&tagged.value),
        }
    }
}

/// A YAML mapping key as text (`sigs.k8s.io/yaml` turns every key into a JSON string).
fn yaml_key(key: &serde_yaml::Value) -> String {
    match key {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Null => "null".into(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim_end().to_string(),
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_as_go_prints_them() {
        let map = Value::Map([("b".to_string(), Value::Int(2)), ("a".to_string(), Value::Nil)].into_iter().collect());
        assert_eq!(map.to_go_string(), "map[a:<nil> b:2]");
        let list = Value::List(vec![Value::Float(1e6), Value::String("x".into()), Value::Bool(true)]);
        assert_eq!(list.to_go_string(), "[1e+06 x true]");
    }

    #[test]
    fn truth_is_go_templates() {
        for falsy in [Value::Nil, Value::Int(0), Value::Float(0.0), Value::String(String::new()), Value::List(vec![])] {
            assert!(!falsy.truth(), "{falsy:?}");
        }
        assert!(Value::String("false".into()).truth(), "a non-empty string is true, whatever it says");
    }
}
