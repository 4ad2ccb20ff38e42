//! Every template of the 14 real KUDO packages renders exactly as Go's `text/template` + sprig
//! rendered it for the goldens in `../shared/conformance/kudo/golden/`: the same bytes, or
//! the same error (template, line, column, node and key).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use maestro_gotmpl::{Error, Template, Value};
use serde_json::Value as Json;

fn conformance() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/kudo")
}

/// Parameters as KUDO hands them to templates: strings, except `array` and `map`, which are
/// YAML with JSON's numbers; a parameter without default or value is nil.
fn params(package: &Path, overrides: &serde_json::Map<String, Json>) -> Value {
    let text = std::fs::read_to_string(package.join("params.yaml")).expect("params.yaml");
    let file: serde_yaml::Value = serde_yaml::from_str(&text).expect("params.yaml parses");
    let mut params = BTreeMap::new();
    for param in file["parameters"].as_sequence().expect("parameters") {
        let name = param["name"].as_str().expect("name").to_string();
        let structured = matches!(param["type"].as_str(), Some("array" | "map"));
        let value = match (overrides.get(&name).and_then(Json::as_str), param.get("default")) {
            (Some(given), _) if structured => Value::from_yaml(&serde_yaml::from_str(given).expect("yaml value")),
            (Some(given), _) => Value::from(given),
            (None, None | Some(serde_yaml::Value::Null)) => Value::Nil,
            (None, Some(default)) if structured => Value::from_yaml(default),
            (None, Some(default)) => Value::String(scalar_text(default)),
        };
        params.insert(name, value);
    }
    Value::Map(params)
}

/// `fmt.Sprintf("%v")` of a YAML scalar as yaml.v2 decoded it.
fn scalar_text(value: &serde_yaml::Value) -> String {
    match value {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) if n.is_f64() => maestro_gotmpl::format::go_float(n.as_f64().unwrap_or(0.0)),
        serde_yaml::Value::Number(n) => n.to_string(),
        other => Value::from_yaml(other).to_go_string(),
    }
}

fn data(golden: &Json, package: &Path) -> Value {
    let mut data = BTreeMap::new();
    for (key, value) in golden["meta"].as_object().expect("meta") {
        data.insert(key.clone(), Value::from_json(value));
    }
    data.insert("Params".into(), params(package, golden["params"].as_object().expect("params")));
    data.insert("Pipes".into(), Value::Map(BTreeMap::new()));
    Value::Map(data)
}

fn rendered(name: &str, source: &str, data: &Value) -> Json {
    match Template::parse(name, source).map_err(Error::from).and_then(|t| t.render(data).map_err(Error::from)) {
        Ok(text) => serde_json::json!({"rendered": text}),
        Err(Error::Parse(e)) => serde_json::json!({"error": format!("parse: {e}")}),
        Err(Error::Exec(e)) => serde_json::json!({"error": format!("render: {e}")}),
    }
}

#[test]
fn every_golden_template_renders_as_go_renders_it() {
    let goldens = std::fs::read_dir(conformance().join("golden")).expect("golden/");
    let mut files: Vec<PathBuf> = goldens.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.retain(|p| p.file_name().is_some_and(|n| n != "cases.json"));
    files.sort();
    assert_eq!(files.len(), 18, "18 golden cases");
    let (mut compared, mut failures) = (0, Vec::new());
    for file in files {
        let golden: Json = serde_json::from_str(&std::fs::read_to_string(&file).expect("golden")).expect("json");
        let package = conformance().join(golden["path"].as_str().expect("path"));
        let data = data(&golden, &package);
        for (name, expected) in golden["templates"].as_object().expect("templates") {
            let source = std::fs::read_to_string(package.join("templates").join(name)).expect("template");
            let actual = rendered(name, &source, &data);
            compared += 1;
            if &actual != expected {
                failures.push(format!("{}: {name}\n  expected {expected}\n  actual   {actual}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {compared} templates differ:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(compared, 176, "every template of every case");
}
