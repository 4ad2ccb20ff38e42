//! The layer rules of ARCHITECTURE.md, checked against the code: the crate graph as `cargo
//! metadata` reports it must be the one the document's layer table allows, and the module
//! rules it states in words must hold in the source.
//!
//! The table is read from the document itself, so the document and this test cannot drift: a
//! crate that gains a dependency fails here until ARCHITECTURE.md says it may have it (and
//! the layer order still holds).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One row of the layer table: the crate's layer and the crates it may import.
#[derive(Debug)]
struct Layer {
    layer: u32,
    may_import: BTreeSet<String>,
}

/// The backticked names in a table cell.
fn names(cell: &str) -> BTreeSet<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// The `## Layers` table of ARCHITECTURE.md: `| layer | crate | owns | may import |`.
fn documented_layers() -> BTreeMap<String, Layer> {
    let doc = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let section = doc.split("## Layers").nth(1).expect("ARCHITECTURE.md has a `## Layers` section");
    let mut layers = BTreeMap::new();
    for line in section.lines().take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // ["", layer, crate, owns, may import, ""]
        let Some(layer) = cells.get(1).and_then(|c| c.parse::<u32>().ok()) else { continue };
        assert_eq!(cells.len(), 6, "a layer row has four cells: {line}");
        let krate = names(cells[2]).into_iter().next().unwrap_or_else(|| panic!("no crate named in: {line}"));
        layers.insert(krate, Layer { layer, may_import: names(cells[4]) });
    }
    assert!(!layers.is_empty(), "the layer table has no rows");
    layers
}

/// Each workspace crate under `crates/` with the workspace crates it depends on (any kind:
/// normal, build or dev).
fn actual_graph() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(repo())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let crates_dir = repo().join("crates").canonicalize().expect("crates/");
    let in_crates = |package: &Value| {
        let manifest = Path::new(package["manifest_path"].as_str().unwrap_or_default());
        manifest.canonicalize().is_ok_and(|m| m.starts_with(&crates_dir))
    };
    let ours: BTreeSet<String> =
        packages.iter().filter(|p| in_crates(p)).filter_map(|p| p["name"].as_str().map(str::to_string)).collect();
    packages
        .iter()
        .filter(|p| in_crates(p))
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["name"].as_str())
                .filter(|name| ours.contains(*name))
                .map(str::to_string)
                .collect();
            (p["name"].as_str().unwrap_or_default().to_string(), deps)
        })
        .collect()
}

#[test]
fn every_crate_depends_only_on_what_the_layer_table_allows() {
    let layers = documented_layers();
    let graph = actual_graph();
    let mut wrong = Vec::new();
    for (krate, deps) in &graph {
        let Some(row) = layers.get(krate) else {
            wrong.push(format!("{krate} has no row in ARCHITECTURE.md's layer table"));
            continue;
        };
        for dep in deps {
            if !row.may_import.contains(dep) {
                wrong.push(format!("{krate} depends on {dep}, which its row does not allow"));
            }
        }
    }
    for name in layers.keys() {
        if !graph.contains_key(name) {
            wrong.push(format!("the layer table names {name}, which is not a crate under crates/"));
        }
    }
    assert!(wrong.is_empty(), "the crate graph breaks ARCHITECTURE.md:\n  {}", wrong.join("\n  "));
}

#[test]
fn the_layer_table_only_allows_imports_from_lower_layers() {
    let layers = documented_layers();
    let mut wrong = Vec::new();
    for (krate, row) in &layers {
        for dep in &row.may_import {
            match layers.get(dep) {
                Some(lower) if lower.layer < row.layer => {}
                Some(other) => {
                    wrong.push(format!("{krate} (layer {}) may import {dep} (layer {})", row.layer, other.layer))
                }
                None => wrong.push(format!("{krate} may import {dep}, which has no row")),
            }
        }
    }
    assert!(wrong.is_empty(), "the layer table is not ordered:\n  {}", wrong.join("\n  "));
}

/// Every `.rs` file below `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Files of `module_dir` (in the hub crate) that mention any of `forbidden`.
fn offenders(module_dir: &str, forbidden: &[&str]) -> Vec<String> {
    let dir = repo().join("crates/hub/src").join(module_dir);
    let mut found = Vec::new();
    for file in sources(&dir) {
        let text = std::fs::read_to_string(&file).expect("source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if forbidden.iter().any(|f| code.contains(f)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn no_rest_handler_can_reach_the_broker() {
    let found = offenders("api", &["crate::transport", "maestro_wire", "MqttLink", "PolicyPush"]);
    assert!(
        found.is_empty(),
        "the hub's api imports the transport (ARCHITECTURE.md: api never imports transport):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn the_write_services_know_nothing_of_http() {
    let found = offenders("service", &["crate::api", "axum", "StatusCode"]);
    assert!(found.is_empty(), "the hub's services import the HTTP layer:\n  {}", found.join("\n  "));
}

/// A crate's modules (`a::b` for `src/a/b.rs` or `src/a/b/mod.rs`; the root is ``) and the
/// modules each one names through `crate::`, `super::` or `self::` paths outside its tests.
/// A module naming its own descendants is the module tree, not an import, and is left out.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeMap<String, PathBuf> = sources(src)
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(src).expect("below src").with_extension("");
            let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|last| ["lib", "main", "mod"].contains(&last.as_str())) {
                parts.pop();
            }
            (parts.join("::"), file)
        })
        .collect();
    let mut graph = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).expect("source");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let own: Vec<&str> = if module.is_empty() { Vec::new() } else { module.split("::").collect() };
        let mut named = BTreeSet::new();
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or_default();
            for path in paths_in(line) {
                let mut segments: Vec<&str> = path.split("::").collect();
                let mut base: Vec<&str> = if segments[0] == "crate" {
                    segments.remove(0);
                    Vec::new()
                } else {
                    own.clone()
                };
                while let Some(first) = segments.first().copied().filter(|s| *s == "super" || *s == "self") {
                    if first == "super" {
                        base.pop();
                    }
                    segments.remove(0);
                }
                base.extend(segments);
                let target = (0..=base.len()).rev().map(|k| base[..k].join("::")).find(|c| modules.contains_key(c));
                if let Some(target) = target {
                    let descendant = module.is_empty() || target.starts_with(&format!("{module}::"));
                    if target != *module && !descendant {
                        named.insert(target);
                    }
                }
            }
        }
        graph.insert(module.clone(), named);
    }
    graph
}

/// Paths starting with `crate`, `super` or `self` in a line of code.
fn paths_in(line: &str) -> Vec<String> {
    let is_path = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let bytes = line.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = [&b"crate::"[..], b"super::", b"self::"].iter().any(|p| bytes[i..].starts_with(p));
        if !starts || (i > 0 && is_path(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let end = i + bytes[i..].iter().take_while(|b| is_path(**b)).count();
        // Only ASCII path bytes lie between `i` and `end`, so both are char boundaries.
        let path = line[i..end].trim_end_matches(':');
        // `super::{a, b::C}` names `super::a` and `super::b::C`.
        if let Some(group) = line[end..].strip_prefix('{') {
            let group = group.split('}').next().unwrap_or_default();
            for item in group.split(',') {
                let item = item.trim();
                let item = &item[..item.bytes().take_while(|b| is_path(*b)).count()];
                let item = item.trim_end_matches(':');
                if !item.is_empty() && item != "self" {
                    found.push(format!("{path}::{item}"));
                }
            }
        }
        found.push(path.to_string());
        i = end;
    }
    found
}

/// The strongly connected components with more than one module (Tarjan).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in self.graph.get(v).into_iter().flatten() {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w.as_str()]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w.as_str()) {
                    let low = self.low[v].min(self.index[w.as_str()]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk { graph, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let mut found = Vec::new();
    for krate in std::fs::read_dir(repo().join("crates")).expect("crates/").flatten() {
        for circle in circles(&module_graph(&krate.path().join("src"))) {
            found.push(format!("{}: {}", krate.file_name().to_string_lossy(), circle.join(" <-> ")));
        }
    }
    found.sort();
    assert!(found.is_empty(), "import circles between modules:\n  {}", found.join("\n  "));
}

#[test]
fn the_circle_check_finds_a_circle() {
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"]), ("d", vec!["a"])]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
            .collect();
    assert_eq!(circles(&graph), vec![vec!["a".to_string(), "b".into(), "c".into()]]);
    assert_eq!(
        paths_in("use super::store::{meta, x::Y}; crate::a::B; my_super::x"),
        ["super::store::meta", "super::store::x::Y", "super::store", "crate::a::B"]
    );
}
