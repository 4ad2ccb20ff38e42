//! Every template of the 14 real KUDO packages renders exactly as Go's `text/template` + sprig
//! rendered it for the goldens in `../shared/conformance/kudo/golden/`: the same bytes, or
//! the same error (template, line, column, node and key).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use maestro_gotmpl::{Value, kudo};
use serde_json::Value as Json;

fn conformance() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/kudo")
}

fn data(golden: &Json, package: &Path) -> Value {
    let text = std::fs::read_to_string(package.join("params.yaml")).expect("params.yaml");
    let file: serde_yaml::Value = serde_yaml::from_str(&text).expect("params.yaml parses");
    let strings = |v: &Json| -> BTreeMap<String, String> {
        v.as_object().expect("object").iter().map(|(k, v)| (k.clone(), v.as_str().expect("string").into())).collect()
    };
    let params = kudo::params(&file, &strings(&golden["params"])).expect("parameters");
    kudo::data(&strings(&golden["meta"]), params, BTreeMap::new())
}

fn rendered(name: &str, source: &str, data: &Value) -> Json {
    match maestro_gotmpl::render(name, source, data) {
        Ok(text) => serde_json::json!({"rendered": text}),
        Err(e) => serde_json::json!({"error": e.kudo_text()}),
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
