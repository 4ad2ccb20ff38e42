//! Test cases and their steps read from folders, as kuttl reads them (SPEC.md §6.2,
//! `internal/file/name.go`): every sub-folder of a test folder is a case; in a case, files
//! `NN-<name>.yaml` with the same number form step NN, and a folder `NN-<name>/` is a step whose
//! files need no number. A file named `assert*` holds asserts, `errors*` objects that must not
//! exist, anything else objects to apply (and at most one `TestStep`). Files without a number
//! are not steps: commands may use them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::model::{TestAssert, TestStep, is_kuttl};

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}, document {document}: {message}")]
    Document { path: PathBuf, document: usize, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// One test case: a folder of steps.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub steps: Vec<Step>,
}

/// One step of a case, in the order the case runs them.
#[derive(Debug, Clone, Default)]
pub struct Step {
    pub index: i64,
    pub name: String,
    /// Where the step's relative paths and commands start.
    pub dir: PathBuf,
    pub apply: Vec<Value>,
    pub asserts: Vec<Value>,
    pub errors: Vec<Value>,
    pub test_step: TestStep,
    pub test_assert: TestAssert,
}

/// What a file name says: its step number (none: not a step file) and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    pub index: Option<i64>,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Apply,
    Assert,
    Errors,
}

/// Reads kuttl's meaning out of a file or folder name: `00-install.yaml`, `01-assert.yaml`,
/// `02-errors-no-pods.yaml`, `03-upgrade/`.
pub fn parse_name(file: &str) -> FileName {
    let stem = file.strip_suffix(".yaml").or_else(|| file.strip_suffix(".yml")).unwrap_or(file);
    let (index, rest) = match stem.split_once('-') {
        Some((digits, rest)) if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) => {
            (digits.parse().ok(), rest)
        }
        _ if !stem.is_empty() && stem.chars().all(|c| c.is_ascii_digit()) => (stem.parse().ok(), ""),
        _ => (None, stem),
    };
    let first = rest.split(['-', '.']).next().unwrap_or_default();
    let role = match first {
        "assert" => Role::Assert,
        "errors" => Role::Errors,
        _ => Role::Apply,
    };
    FileName { index, name: rest.to_string(), role }
}

fn is_yaml(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

fn entries(dir: &Path) -> Result<Vec<PathBuf>, FileError> {
    let read = std::fs::read_dir(dir).map_err(|source| FileError::Read { path: dir.to_path_buf(), source })?;
    let mut paths: Vec<PathBuf> = read.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    Ok(paths)
}

/// The cases of a test folder, by name; `only` keeps the case of that name.
pub fn cases(test_dir: &Path, only: Option<&str>) -> Result<Vec<Case>, FileError> {
    let mut found = Vec::new();
    for dir in entries(test_dir)?.into_iter().filter(|p| p.is_dir()) {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if only.is_some_and(|only| only != name) {
            continue;
        }
        let steps = steps(&dir)?;
        found.push(Case { name, dir, steps });
    }
    Ok(found)
}

/// The steps of one case folder, in order.
pub fn steps(case_dir: &Path) -> Result<Vec<Step>, FileError> {
    // Each step with whether an apply file named it (kuttl names a step after its first file,
    // an apply file before an assert).
    let mut by_index: BTreeMap<i64, (Step, bool)> = BTreeMap::new();
    for path in entries(case_dir)? {
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let parsed = parse_name(file);
        let Some(index) = parsed.index else { continue };
        if !path.is_dir() && !is_yaml(&path) {
            continue;
        }
        let named = parsed.role == Role::Apply || path.is_dir();
        let (step, by_apply) =
            by_index.entry(index).or_insert_with(|| (new_step(index, &parsed.name, case_dir), named));
        if named && !*by_apply {
            step.name = parsed.name.clone();
            *by_apply = true;
        }
        if path.is_dir() {
            step.dir = path.clone();
            for inner in entries(&path)?.into_iter().filter(|p| p.is_file() && is_yaml(p)) {
                let name = inner.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                add_file(step, &inner, parse_name(name).role)?;
            }
        } else {
            add_file(step, &path, parsed.role)?;
        }
    }
    let mut steps: Vec<Step> = by_index.into_values().map(|(step, _)| step).collect();
    for step in &mut steps {
        load_references(step)?;
    }
    Ok(steps)
}

fn new_step(index: i64, name: &str, dir: &Path) -> Step {
    Step { index, name: name.to_string(), dir: dir.to_path_buf(), ..Step::default() }
}

/// The YAML documents of a file, each a mapping with `apiVersion` and `kind`.
pub fn documents(path: &Path) -> Result<Vec<Value>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read { path: path.to_path_buf(), source })?;
    let mut found = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let at = |message: String| FileError::Document { path: path.to_path_buf(), document: index + 1, message };
        let value = Value::deserialize(document).map_err(|e| at(format!("not valid YAML: {e}")))?;
        if value.is_null() {
            continue;
        }
        let typed = ["apiVersion", "kind"].iter().all(|k| value.get(*k).and_then(Value::as_str).is_some());
        if !value.is_object() || !typed {
            return Err(at("an object needs apiVersion and kind".into()));
        }
        found.push(value);
    }
    Ok(found)
}

fn add_file(step: &mut Step, path: &Path, role: Role) -> Result<(), FileError> {
    for document in documents(path)? {
        match role {
            Role::Assert if is_kuttl(&document, "TestAssert") => step.test_assert = decode(path, document)?,
            Role::Apply if is_kuttl(&document, "TestStep") => {
                let test_step: TestStep = decode(path, document)?;
                if let Some(index) = test_step.index {
                    step.index = index;
                }
                step.test_step = test_step;
            }
            Role::Apply => step.apply.push(document),
            Role::Assert => step.asserts.push(document),
            Role::Errors => step.errors.push(document),
        }
    }
    Ok(())
}

fn decode<T: serde::de::DeserializeOwned>(path: &Path, document: Value) -> Result<T, FileError> {
    serde_json::from_value(document)
        .map_err(|e| FileError::Invalid { path: path.to_path_buf(), message: e.to_string() })
}

/// The files a `TestStep` names (`apply`, `assert`, `error`), relative to the step's folder.
fn load_references(step: &mut Step) -> Result<(), FileError> {
    let lists = [
        (step.test_step.apply.clone(), Role::Apply),
        (step.test_step.assert.clone(), Role::Assert),
        (step.test_step.error.clone(), Role::Errors),
    ];
    for (files, role) in lists {
        for file in files {
            let path = step.dir.join(&file);
            for document in documents(&path)? {
                match role {
                    Role::Apply => step.apply.push(document),
                    Role::Assert => step.asserts.push(document),
                    Role::Errors => step.errors.push(document),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_say_step_and_role_as_kuttl_reads_them() {
        let name = |index: Option<i64>, name: &str, role| FileName { index, name: name.into(), role };
        assert_eq!(parse_name("00-install.yaml"), name(Some(0), "install", Role::Apply));
        assert_eq!(parse_name("01-assert.yaml"), name(Some(1), "assert", Role::Assert));
        assert_eq!(parse_name("02-errors-no-pods.yaml"), name(Some(2), "errors-no-pods", Role::Errors));
        assert_eq!(parse_name("10-upgrade"), name(Some(10), "upgrade", Role::Apply));
        assert_eq!(parse_name("assert.yaml"), name(None, "assert", Role::Assert));
        assert_eq!(parse_name("spark-pi.yaml"), name(None, "spark-pi", Role::Apply));
    }

    fn write(dir: &Path, file: &str, text: &str) {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn steps_gather_their_files_in_order_and_test_step_adds_more() {
        let dir = tempfile::tempdir().unwrap();
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";
        write(dir.path(), "01-assert.yaml", cm);
        write(
            dir.path(),
            "00-install.yaml",
            &format!(
                "{cm}---\napiVersion: kuttl.dev/v1beta1\nkind: TestStep\nassert: [extra.yaml]\ncommands:\n  - command: echo hi\n"
            ),
        );
        write(dir.path(), "extra.yaml", cm);
        write(dir.path(), "00-errors.yaml", cm);
        write(dir.path(), "02-upgrade/patch.yaml", cm);
        write(dir.path(), "02-upgrade/assert.yaml", "apiVersion: kudo.dev/v1alpha1\nkind: TestAssert\ntimeout: 5\n");
        write(dir.path(), "notes.txt", "not a step");
        let steps = steps(dir.path()).unwrap();
        let summary: Vec<(i64, &str, usize, usize, usize)> =
            steps.iter().map(|s| (s.index, s.name.as_str(), s.apply.len(), s.asserts.len(), s.errors.len())).collect();
        assert_eq!(summary, [(0, "install", 1, 1, 1), (1, "assert", 0, 1, 0), (2, "upgrade", 1, 0, 0)]);
        assert_eq!(steps[0].test_step.commands[0].command, "echo hi");
        assert_eq!(steps[2].test_assert.timeout, Some(5), "the older kudo.dev group is accepted");
    }

    #[test]
    fn a_document_without_kind_is_refused_naming_file_and_document() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "00-install.yaml", "apiVersion: v1\nkind: ConfigMap\n---\nmetadata: {}\n");
        let error = steps(dir.path()).unwrap_err().to_string();
        assert!(error.contains("00-install.yaml, document 2: an object needs apiVersion and kind"), "{error}");
    }
}
