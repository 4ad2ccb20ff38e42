//! The data KUDO hands a package's templates: metadata (`.Name`, `.Namespace`,
//! `.OperatorName`, ...), `.Params` typed as KUDO types them, and `.Pipes`.
//!
//! Every parameter is a **string** (its value, or its default as `fmt.Sprintf("%v")` of what
//! YAML decoded), except `type: array` and `type: map`, which are YAML with JSON's number
//! semantics (numbers are `float64`); a parameter with neither value nor default is nil.

use std::collections::BTreeMap;

use crate::value::Value;

/// `.Params` from a `params.yaml` document and the instance's values (strings, as
/// `Instance.spec.parameters` holds them). Values that are not valid YAML for a structured
/// parameter are an error naming the parameter.
pub fn params(file: &serde_yaml::Value, values: &BTreeMap<String, String>) -> Result<Value, String> {
    let mut params = BTreeMap::new();
    for param in file.get("parameters").and_then(serde_yaml::Value::as_sequence).into_iter().flatten() {
        let Some(name) = param.get("name").and_then(serde_yaml::Value::as_str) else { continue };
        let structured = matches!(param.get("type").and_then(serde_yaml::Value::as_str), Some("array" | "map"));
        let value = match (values.get(name), param.get("default")) {
            (Some(given), _) if structured => {
                let parsed: serde_yaml::Value =
                    serde_yaml::from_str(given).map_err(|e| format!("parameter {name}: not YAML: {e}"))?;
                Value::from_yaml(&parsed)
            }
            (Some(given), _) => Value::String(given.clone()),
            (None, None | Some(serde_yaml::Value::Null)) => Value::Nil,
            (None, Some(default)) if structured => Value::from_yaml(default),
            (None, Some(default)) => Value::String(scalar_text(default)),
        };
        params.insert(name.to_string(), value);
    }
    Ok(Value::Map(params))
}

/// `fmt.Sprintf("%v")` of a YAML scalar as yaml.v2 decodes it.
pub fn scalar_text(value: &serde_yaml::Value) -> String {
    match value {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) if n.is_f64() => crate::number::go_float(n.as_f64().unwrap_or(0.0)),
        serde_yaml::Value::Number(n) => n.to_string(),
        other => Value::from_yaml(other).to_go_string(),
    }
}

/// The whole of dot: `meta` (`Name`, `Namespace`, `OperatorName`, `OperatorVersion`,
/// `AppVersion`, `PlanName`, `PhaseName`, `StepName`), `Params` and `Pipes`.
pub fn data(meta: &BTreeMap<String, String>, params: Value, pipes: BTreeMap<String, String>) -> Value {
    let mut data: BTreeMap<String, Value> = meta.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
    data.insert("Params".into(), params);
    data.insert("Pipes".into(), Value::Map(pipes.into_iter().map(|(k, v)| (k, Value::String(v))).collect()));
    Value::Map(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_strings_except_arrays_and_maps() {
        let file: serde_yaml::Value = serde_yaml::from_str(
            "parameters:\n- {name: N, default: 3}\n- {name: F, default: 1.0}\n- {name: L, type: array, default: [1, a]}\n\
             - {name: NONE}\n- {name: M, type: map}\n",
        )
        .unwrap();
        let values = BTreeMap::from([("M".to_string(), "{k: 2}".to_string())]);
        let Value::Map(typed) = params(&file, &values).unwrap() else { panic!("a map") };
        assert_eq!(typed["N"], Value::from("3"));
        assert_eq!(typed["F"], Value::from("1"), "yaml.v2 decodes 1.0 as a float, printed %v");
        assert_eq!(typed["L"], Value::List(vec![Value::Float(1.0), Value::from("a")]));
        assert_eq!(typed["NONE"], Value::Nil);
        assert_eq!(typed["M"], Value::Map([("k".to_string(), Value::Float(2.0))].into()));
        let bad = BTreeMap::from([("M".to_string(), "{".to_string())]);
        assert!(params(&file, &bad).unwrap_err().starts_with("parameter M: not YAML"));
    }
}
