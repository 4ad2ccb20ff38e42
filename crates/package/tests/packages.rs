//! The 14 real KUDO packages read, verify and render as KUDO would have them; bad packages are
//! refused with the reason; archives are reproducible and read back whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use maestro_package::render::{Meta, Outcome};
use maestro_package::verify::verify;
use maestro_package::{Limits, Package, PackageError, archive, read_path, read_tgz};

fn conformance() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/kudo")
}

/// Every `operator/` folder of the repository (cassandra's under `3.11/`, flink's demo too).
fn packages() -> Vec<PathBuf> {
    fn find(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.join("operator.yaml").is_file() {
                out.push(path);
            } else if path.is_dir() && path.file_name().is_some_and(|n| n != "tests" && n != "templates") {
                find(&path, out);
            }
        }
    }
    let mut found = Vec::new();
    find(&conformance().join("repository"), &mut found);
    found.sort();
    found
}

#[test]
fn the_14_packages_verify_with_at_most_warnings() {
    let packages = packages();
    assert_eq!(packages.len(), 14, "{packages:?}");
    for path in packages {
        let package = read_path(&path, &Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let report = verify(&package);
        assert!(report.is_ok(), "{}: {:#?}", path.display(), report.errors);
    }
}

#[test]
fn packages_render_the_goldens() {
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(conformance().join("golden/cases.json")).unwrap()).unwrap();
    for case in cases {
        let package = read_path(&conformance().join(case["path"].as_str().unwrap()), &Limits::default()).unwrap();
        let meta = &case["meta"];
        let text = |k: &str| meta[k].as_str().unwrap_or_default().to_string();
        let meta = Meta {
            instance: text("Name"),
            namespace: text("Namespace"),
            plan: text("PlanName"),
            phase: text("PhaseName"),
            step: text("StepName"),
        };
        let values: BTreeMap<String, String> =
            serde_json::from_value(case["params"].clone()).expect("params are strings");
        let data = package.data(&meta, &values, BTreeMap::new()).unwrap();
        let rendered = serde_json::to_value(package.render_all(&data)).unwrap();
        let golden_file =
            format!("golden/{}.{}.json", case["package"].as_str().unwrap(), case["case"].as_str().unwrap());
        let golden: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(conformance().join(&golden_file)).unwrap()).unwrap();
        assert_eq!(rendered, golden["templates"], "{golden_file}");
    }
}

/// A small valid package, as files.
fn minimal() -> BTreeMap<String, Vec<u8>> {
    let files = [
        (
            "operator.yaml",
            "name: demo\noperatorVersion: 0.1.0\ntasks:\n- name: app\n  kind: Apply\n  spec:\n    resources: [cm.yaml]\n\
             plans:\n  deploy:\n    strategy: serial\n    phases:\n    - name: main\n      strategy: serial\n      steps:\n      - name: app\n        tasks: [app]\n",
        ),
        ("params.yaml", "parameters:\n- name: GREETING\n  default: hello\n"),
        (
            "templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Name }}\ndata:\n  greeting: {{ .Params.GREETING }}\n",
        ),
    ];
    files.into_iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect()
}

fn with(changes: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    let mut files = minimal();
    for (path, content) in changes {
        files.insert(path.to_string(), content.as_bytes().to_vec());
    }
    files
}

fn errors_of(files: BTreeMap<String, Vec<u8>>) -> Vec<String> {
    verify(&Package::from_files(files).expect("reads")).errors
}

#[test]
fn a_minimal_package_is_clean() {
    let report = verify(&Package::from_files(minimal()).unwrap());
    assert!(report.errors.is_empty() && report.warnings.is_empty(), "{report:?}");
}

#[test]
fn bad_packages_are_refused_with_the_reason() {
    let operator = String::from_utf8(minimal()["operator.yaml"].clone()).unwrap();
    let cases: Vec<(BTreeMap<String, Vec<u8>>, &str)> = vec![
        (with(&[("operator.yaml", &operator.replace("  deploy:", "  install:"))]), "required to have 'deploy' plan"),
        (
            with(&[("params.yaml", "parameters:\n- name: GREETING\n  trigger: nope\n")]),
            "plan \"nope\" used in parameter \"GREETING\"",
        ),
        (
            with(&[("templates/cm.yaml", "kind: ConfigMap\napiVersion: v1\nx: {{ .Params.NOPE }}\n")]),
            "parameter \"NOPE\" in template cm.yaml is not defined",
        ),
        (
            with(&[("templates/cm.yaml", "{{ if }}")]),
            "template file \"cm.yaml\" reports the following error: template: cm.yaml:1: missing value for if",
        ),
        (with(&[("templates/cm.yaml", "{{ nosuch 1 }}")]), "function \"nosuch\" not defined"),
        (with(&[("operator.yaml", &operator.replace("kind: Apply", "kind: Deploy"))]), "unknown kind \"Deploy\""),
        (
            with(&[("operator.yaml", &operator.replace("[cm.yaml]", "[missing.yaml]"))]),
            "template \"missing.yaml\" required by app but is not defined",
        ),
        (
            with(&[("operator.yaml", &operator.replace("tasks: [app]", "tasks: [ghost]"))]),
            "task \"ghost\" in plan \"deploy\" is not defined",
        ),
        (
            with(&[("params.yaml", "parameters:\n- name: GREETING\n- name: GREETING\n")]),
            "parameter \"GREETING\" is defined twice",
        ),
        (
            with(&[("params.yaml", "parameters:\n- name: GREETING\n  type: integer\n  default: many\n")]),
            "has an invalid default value",
        ),
        (
            with(&[("templates/cm.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")]),
            "'kind: Namespace' not allowed",
        ),
        (with(&[("templates/cm.yaml", "{{ .Nope }}")]), "invalid implicit parameter \"Nope\""),
        (
            with(&[("templates/cm.yaml", &format!("{}x{}", "{{ if true }}".repeat(200), "{{ end }}".repeat(200)))]),
            "nesting deeper than 100",
        ),
        (with(&[("templates/cm.yaml", "a: [unclosed\n")]), "parsing rendered YAML from cm.yaml failed"),
        (with(&[("params.yaml", "parameters:\n- name: GREETING\n  advanced: true\n")]), "marked as advanced, but also as required"),
        (
            with(&[("operator.yaml", &operator.replace(
                "tasks:\n- name: app\n",
                "tasks:\n- name: pipe\n  kind: Pipe\n  spec:\n    pod: cm.yaml\n    pipe: [{file: /tmp/a, kind: Secret, key: k}]\n- name: again\n  kind: Pipe\n  spec:\n    pod: cm.yaml\n    pipe: [{file: /tmp/b, kind: Secret, key: k}]\n- name: app\n",
            ).replace("tasks: [app]", "tasks: [pipe, again, app]"))]),
            "pipe key \"k\" is used twice in plan \"deploy\"",
        ),
    ];
    for (files, reason) in cases {
        let errors = errors_of(files);
        assert!(errors.iter().any(|e| e.contains(reason)), "expected an error with {reason:?}, got {errors:#?}");
    }
}

#[test]
fn unreadable_files_name_the_file() {
    let missing = {
        let mut f = minimal();
        f.remove("params.yaml");
        f
    };
    assert!(matches!(Package::from_files(missing), Err(PackageError::Missing(f)) if f == "params.yaml"));
    let wrong = with(&[("operator.yaml", "apiVersion: kudo.dev/v1alpha1\nname: x\n")]);
    let err = Package::from_files(wrong).unwrap_err().to_string();
    assert!(err.starts_with("operator.yaml: apiVersion \"kudo.dev/v1alpha1\" is not supported"), "{err}");
    let typed = with(&[("operator.yaml", "name: [not, a, string]\n")]);
    assert!(Package::from_files(typed).unwrap_err().to_string().starts_with("operator.yaml: name: invalid type"));
}

#[test]
fn yaml_bombs_are_refused() {
    // A billion laughs in a parameter's default, the one place any YAML is kept as a value.
    let mut bomb = String::from(
        "parameters:\n- name: GREETING\n  default:\n    a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (n, prev) in ["b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["a", "b", "c", "d", "e", "f", "g", "h"]) {
        bomb.push_str(&format!(
            "    {n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
    }
    let started = std::time::Instant::now();
    let result = Package::from_files(with(&[("params.yaml", &bomb)]));
    let err = result.expect_err("a billion laughs must not parse").to_string();
    assert!(err.starts_with("params.yaml:"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "refused quickly");
}

/// Builds a tgz by hand, with whatever entries a hostile archive may hold.
fn tgz(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, kind, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        // `set_path` refuses `..`; a hostile archive writes the name field directly.
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        if *kind == tar::EntryType::Symlink {
            header.set_link_name("/etc/passwd").unwrap();
        }
        header.set_cksum();
        builder.append(&header, *content).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[test]
fn hostile_archives_are_refused() {
    let regular = tar::EntryType::Regular;
    let files = minimal();
    let base: Vec<(&str, tar::EntryType, &[u8])> =
        files.iter().map(|(k, v)| (k.as_str(), regular, v.as_slice())).collect();
    let limits = Limits::default();
    let mut escape = base.clone();
    escape.push(("../escape.yaml", regular, b"x"));
    assert!(
        matches!(read_tgz(&tgz(&escape), &limits), Err(PackageError::Unsafe(m)) if m.contains("inside the package"))
    );
    let mut link = base.clone();
    link.push(("templates/link.yaml", tar::EntryType::Symlink, b""));
    assert!(matches!(read_tgz(&tgz(&link), &limits), Err(PackageError::Unsafe(m)) if m.contains("regular files only")));
    let mut twice = base.clone();
    twice.push(("templates/cm.yaml", regular, b"kind: ConfigMap"));
    assert!(matches!(read_tgz(&tgz(&twice), &limits), Err(PackageError::Archive(m)) if m.contains("holds it twice")));
    let small = Limits { max_file_bytes: 64, ..Limits::default() };
    assert!(matches!(read_tgz(&tgz(&base), &small), Err(PackageError::Limit(_))));
    let tiny = Limits { max_archive_bytes: 100, ..Limits::default() };
    assert!(matches!(read_tgz(&tgz(&base), &tiny), Err(PackageError::Limit(_))));
    assert!(read_tgz(&tgz(&base), &limits).is_ok(), "the same files in a plain archive read");
    assert!(matches!(read_tgz(b"not gzip", &limits), Err(PackageError::Archive(_))));
}

#[test]
fn archives_are_reproducible_and_read_back_whole() {
    let zookeeper = conformance().join("repository/zookeeper/operator");
    let package = read_path(&zookeeper, &Limits::default()).unwrap();
    let first = archive::create(&package).unwrap();
    let second = archive::create(&read_path(&zookeeper, &Limits::default()).unwrap()).unwrap();
    assert_eq!(first, second, "same package, same bytes");
    let back = read_tgz(&first, &Limits::default()).unwrap();
    assert_eq!(back.files, package.files);
    assert_eq!(back.operator, package.operator);
    assert_eq!(package.operator.archive_name(), "zookeeper-3.6.2_0.3.3.tgz");
}

#[test]
fn outcomes_serialize_as_the_goldens() {
    let json = serde_json::to_value(Outcome::Error("render: x".into())).unwrap();
    assert_eq!(json, serde_json::json!({"error": "render: x"}));
}

#[test]
fn a_package_becomes_the_operator_and_operator_version_kudo_installs() {
    let package = read_path(&conformance().join("repository/zookeeper/operator"), &Limits::default()).unwrap();
    let (operator, version) = package.resources("default");
    assert_eq!((operator.kind.as_str(), operator.metadata.name.as_str()), ("Operator", "zookeeper"));
    assert_eq!(version.metadata.name, "zookeeper-3.6.2-0.3.3");
    let json = serde_json::to_value(&version).unwrap();
    assert_eq!(json["apiVersion"], "kudo.dev/v1beta1");
    assert_eq!(json["spec"]["operator"]["name"], "zookeeper");
    let node_count = json["spec"]["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "NODE_COUNT").unwrap();
    assert_eq!(node_count["default"], "3", "defaults are strings");
    assert_eq!(node_count["value-type"], "string", "the CRD's JSON name");
    assert_eq!(node_count["required"], true);
    assert_eq!(json["spec"]["templates"].as_object().unwrap().len(), package.templates.len());

    let cassandra = read_path(&conformance().join("repository/cassandra/3.11/operator"), &Limits::default()).unwrap();
    let (_, version) = cassandra.resources("default");
    let topology = version.spec.parameters.iter().find(|p| p.name == "NODE_TOPOLOGY").unwrap();
    assert_eq!(topology.value_type, "array");
    let text = topology.default.as_deref().unwrap_or_default();
    assert!(serde_yaml::from_str::<Vec<serde_yaml::Value>>(text).is_ok(), "an array default is YAML text: {text}");
}
